// k-means' distance work (cluster/distance-kernel.ts) as float32 matrix products in onnxruntime: one
// Gemm gives `||r||² - 2 x·r` for every point x and row r. Float32 sums are not exact, so every
// assignment whose two best scores are closer than the proven error bound is settled again in float64;
// the assignments are then exactly those of the TypeScript kernel.

import type * as Ort from 'onnxruntime-node';
import { nearestInto, dotRows, squaredNormsInto, type DistanceKernel, type DistanceKernelFactory } from '../../cluster/distance-kernel.js';
import { kmeansAsync, type KMeansOptions, type KMeansResult } from '../../cluster/kmeans.js';
import { buildOnnxModel, OnnxDataType, type OnnxGraphSpec } from '../../onnx/model-builder.js';

/** Options of {@link onnxDistanceKernel}. */
export interface OnnxDistanceKernelOptions {
  /** onnxruntime intra-op threads (0: all cores), as for the backbone. */
  threads?: number;
}

/**
 * Rows per Gemm for k-means++ seeding distances: the rows are zero-padded to this many so that one
 * restart's float32 results, and so its seeds, do not depend on how many restarts run beside it.
 */
export const SEED_ROWS_PER_PRODUCT = 16;

/** Unit roundoff of float32 and float64. */
const FLOAT32_EPSILON = 2 ** -24;
const FLOAT64_EPSILON = 2 ** -53;

/**
 * A kernel over `points` that runs `||r||² - 2 X·Rᵀ` as one onnxruntime Gemm per call (MLAS sgemm:
 * AVX-512 / AVX2 on x86) and finishes in TypeScript:
 *
 * - `nearest`: the best and second-best float32 scores of each point are compared with
 *   {@link scoreErrorBound}; when they are within twice the bound of each other the float32 result
 *   might be the wrong one, and the point is settled in float64 as `nearestInto` settles it (among the
 *   two best when the third is clearly worse, else among all). Elsewhere the true nearest centroid is
 *   the float32 one. So assignments, ties included, equal the exact kernel's.
 * - `squaredDistances` (seeding): `||x||² + score`, float32-accurate; a distance within the error
 *   bound of zero is reported as zero, so a point's copies are never drawn as seeds while other points
 *   are at a distance. These weights differ from the exact kernel's in the last float32 bits, so D²
 *   sampling can (rarely) draw another point than `kmeans` would from the same rng.
 *
 * Results are deterministic on a machine: MLAS sums each output in a fixed order whatever the thread
 * count (checked: seeding distances bit-identical with 1 and 2 threads). onnxruntime is loaded on
 * first use.
 */
export function onnxDistanceKernel(options: OnnxDistanceKernelOptions = {}): DistanceKernelFactory {
  return (points, dim, pointNorms) => createOnnxDistanceKernel(points, dim, pointNorms, options);
}

/** The kernel of {@link onnxDistanceKernel} itself, with its {@link OnnxDistanceKernel.closeCalls} count. */
export async function createOnnxDistanceKernel(
  points: Float32Array,
  dim: number,
  pointNorms: Float64Array,
  options: OnnxDistanceKernelOptions = {},
): Promise<OnnxDistanceKernel> {
  const ort = await import('onnxruntime-node');
  // The backbone's session options (backbone.ts).
  const sessionOptions: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? 0,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
  };
  const [scores, bestScores] = await Promise.all([
    ort.InferenceSession.create(buildScoresGraph(dim), sessionOptions),
    ort.InferenceSession.create(buildBestScoresGraph(dim), sessionOptions),
  ]);
  return new OnnxDistanceKernel(ort, { scores, bestScores }, points, dim, pointNorms);
}

/**
 * {@link kmeans} (same options, same result) with {@link onnxDistanceKernel}: for large inputs, e.g. the
 * raw-feature baseline's 100 000 x 768 cells. Seeded determinism as `kmeans`; see the kernel for how
 * its results relate to `kmeans`'s.
 *
 * @throws as `kmeans`
 */
export function kmeansOnnx(points: Float32Array, dim: number, options: KMeansOptions & OnnxDistanceKernelOptions): Promise<KMeansResult> {
  return kmeansAsync(points, dim, options, onnxDistanceKernel({ threads: options.threads }));
}

/** The Gemm: `scores [n, m] = -2 * points [n, dim] · rowsᵀ + rowNorms [1, m]`, with n and m free. */
export function buildScoresGraph(dim: number): Uint8Array {
  return buildOnnxModel({ name: 'kmeans_scores', ...scoresGraph(dim), outputs: [{ name: 'scores', elemType: OnnxDataType.float, dims: ['n', 'm'] }] });
}

/**
 * The Gemm of {@link buildScoresGraph} followed by the `top` (an int64 [1] input, at most m) lowest
 * scores of each point in ascending order, `best [n, top]`, and their columns, `bestIndex [n, top]`
 * (int32): the kernel reads 6 values per point instead of m.
 */
export function buildBestScoresGraph(dim: number): Uint8Array {
  const graph = scoresGraph(dim);
  return buildOnnxModel({
    name: 'kmeans_best_scores',
    inputs: [...graph.inputs, { name: 'top', elemType: OnnxDataType.int64, dims: [1] }],
    nodes: [
      ...graph.nodes,
      { op: 'TopK', inputs: ['scores', 'top'], outputs: ['best', 'bestIndex64'], attributes: { axis: 1, largest: 0, sorted: 1 } },
      { op: 'Cast', inputs: ['bestIndex64'], outputs: ['bestIndex'], attributes: { to: OnnxDataType.int32 } },
    ],
    outputs: [
      { name: 'best', elemType: OnnxDataType.float, dims: ['n', 'top'] },
      { name: 'bestIndex', elemType: OnnxDataType.int32, dims: ['n', 'top'] },
    ],
  });
}

function scoresGraph(dim: number): Pick<OnnxGraphSpec, 'inputs' | 'nodes'> {
  const f = OnnxDataType.float;
  return {
    inputs: [
      { name: 'points', elemType: f, dims: ['n', dim] },
      { name: 'rows', elemType: f, dims: ['m', dim] },
      { name: 'rowNorms', elemType: f, dims: [1, 'm'] },
    ],
    nodes: [{ op: 'Gemm', inputs: ['points', 'rows', 'rowNorms'], outputs: ['scores'], attributes: { transB: 1 }, floatAttributes: { alpha: -2, beta: 1 } }],
  };
}

/**
 * A bound on |float32 score - exact score| for a point of norm `pointNorm` against rows of norm at
 * most `rowNorm`, whatever order and FMA use the Gemm sums in. The score `||r||² - 2 x·r` is a sum of
 * dim + 1 terms whose absolute values add up to at most `sum = rowNorm² + 2 pointNorm rowNorm`
 * (Cauchy-Schwarz). However the Gemm orders it (onnxruntime writes `||r||²` into the output, MLAS adds
 * `-2 x·r` to it block by block of the shared dimension, with or without FMA), no term is rounded more
 * than dim + 1 times, so the result is off by at most γ(dim + 1) sum, γ(m) = m u / (1 - m u) (Higham,
 * Accuracy and Stability of Numerical Algorithms, 2002, sections 2.2 and 3.1); rounding `||r||²` to
 * float32 adds u sum at most. `(dim + 4) u sum` covers both for dim < 2^20. The float64 kernel's own
 * rounding, `(dim + 4) 2^-53 sum`, is added so that a point decided here is decided the same way in
 * float64, and the small constant covers products that underflow to subnormals or zero.
 */
export function scoreErrorBound(dim: number, pointNorm: number, rowNorm: number): number {
  const sum = rowNorm * (rowNorm + 2 * pointNorm);
  return (dim + 4) * (FLOAT32_EPSILON + FLOAT64_EPSILON) * sum + dim * 2 ** -120;
}

/**
 * Above this, `||r||² + 2 ||x|| ||r||` (a bound on every partial sum of a score) could overflow float32
 * (max ~3.4e38); such calls run exactly in TypeScript instead, so the Gemm never yields Inf or NaN.
 */
const FLOAT32_SAFE_MAGNITUDE = 1e37;

/** See {@link onnxDistanceKernel}. */
export class OnnxDistanceKernel implements DistanceKernel {
  /** Points whose assignment the float32 scores could not decide (settled in float64), over all calls. */
  closeCalls = 0;
  private readonly n: number;
  private readonly pointsTensor: Ort.Tensor;
  /** [n] Euclidean norm of each point. */
  private readonly pointLengths: Float64Array;
  private readonly maxPointLength: number;

  constructor(
    private readonly ort: typeof Ort,
    private readonly sessions: { scores: Ort.InferenceSession; bestScores: Ort.InferenceSession },
    private readonly points: Float32Array,
    private readonly dim: number,
    private readonly pointNorms: Float64Array,
  ) {
    this.n = pointNorms.length;
    this.pointsTensor = new ort.Tensor('float32', points, [this.n, dim]);
    this.pointLengths = pointNorms.map(Math.sqrt);
    this.maxPointLength = this.pointLengths.reduce((a, b) => Math.max(a, b), 0);
  }

  async squaredDistances(rows: Float32Array, count: number, out: Float64Array): Promise<void> {
    const { n, dim, points, pointNorms, pointLengths } = this;
    const m = SEED_ROWS_PER_PRODUCT;
    for (let first = 0; first < count; first += m) {
      const used = Math.min(m, count - first);
      const batch = new Float32Array(m * dim);
      batch.set(rows.subarray(first * dim, (first + used) * dim));
      const norms = squaredNormsInto(batch, m, dim, new Float64Array(m));
      if (!this.fitsFloat32(norms)) {
        for (let r = 0; r < used; r++) {
          for (let i = 0; i < n; i++) {
            const d = pointNorms[i] - 2 * dotRows(points, i * dim, batch, r * dim, dim) + norms[r];
            out[(first + r) * n + i] = d < 0 ? 0 : d;
          }
        }
        continue;
      }
      const scores = (await this.run(this.sessions.scores, batch, norms, m)).scores.data as Float32Array;
      for (let r = 0; r < used; r++) {
        const rowLength = Math.sqrt(norms[r]);
        const o = (first + r) * n;
        for (let i = 0; i < n; i++) {
          const d = pointNorms[i] + scores[i * m + r];
          out[o + i] = d > scoreErrorBound(dim, pointLengths[i], rowLength) ? d : 0;
        }
      }
    }
  }

  async nearest(centroids: Float32Array, k: number, out: Int32Array): Promise<void> {
    const { n, dim, points, pointLengths } = this;
    if (k === 1) {
      out.fill(0);
      return;
    }
    const norms = squaredNormsInto(centroids, k, dim, new Float64Array(k));
    if (!this.fitsFloat32(norms)) {
      nearestInto(points, n, dim, centroids, k, out);
      return;
    }
    // The three best scores: when the third is clearly worse than the best, only the first two can be
    // nearest, and two float64 dot products settle a close call instead of k.
    const top = Math.min(3, k);
    const result = await this.run(this.sessions.bestScores, centroids, norms, k, { top: new this.ort.Tensor('int64', BigInt64Array.of(BigInt(top)), [1]) });
    const best = result.best.data as Float32Array; // [n, top] ascending
    const bestIndex = result.bestIndex.data as Int32Array; // [n, top]
    const maxLength = Math.sqrt(Math.max(...norms));
    const close: number[] = [];
    for (let i = 0; i < n; i++) {
      const o = i * top;
      const margin = 2 * scoreErrorBound(dim, pointLengths[i], maxLength);
      if (best[o + 1] - best[o] > margin) {
        out[i] = bestIndex[o];
      } else if (k === 2 || best[o + 2] - best[o] > margin) {
        out[i] = this.nearestOfTwo(i, centroids, norms, bestIndex[o], bestIndex[o + 1]);
        this.closeCalls++;
      } else {
        close.push(i);
      }
    }
    // The closest calls, gathered and settled together by the exact kernel.
    const rows = new Float32Array(close.length * dim);
    close.forEach((i, r) => rows.set(points.subarray(i * dim, i * dim + dim), r * dim));
    const exact = new Int32Array(close.length);
    nearestInto(rows, close.length, dim, centroids, k, exact);
    close.forEach((i, r) => (out[i] = exact[r]));
    this.closeCalls += close.length;
  }

  /** Of centroids a and b, the one `nearestInto` would choose for point i (float64 scores, ties to the lower index). */
  private nearestOfTwo(i: number, centroids: Float32Array, norms: Float64Array, a: number, b: number): number {
    const { points, dim } = this;
    const scoreA = norms[a] - 2 * dotRows(points, i * dim, centroids, a * dim, dim);
    const scoreB = norms[b] - 2 * dotRows(points, i * dim, centroids, b * dim, dim);
    return scoreA < scoreB || (scoreA === scoreB && a < b) ? a : b;
  }

  async dispose(): Promise<void> {
    await Promise.all([this.sessions.scores.release(), this.sessions.bestScores.release()]);
  }

  private fitsFloat32(rowNorms: Float64Array): boolean {
    const rowLength = Math.sqrt(Math.max(...rowNorms));
    return rowLength * (rowLength + 2 * this.maxPointLength) < FLOAT32_SAFE_MAGNITUDE;
  }

  /** Runs a scores graph on m rows ([m, dim]) with their float64 norms. */
  private run(
    session: Ort.InferenceSession,
    rows: Float32Array,
    norms: Float64Array,
    m: number,
    extra: Record<string, Ort.Tensor> = {},
  ): Promise<Ort.InferenceSession.ReturnType> {
    const { ort, dim } = this;
    return session.run({
      points: this.pointsTensor,
      rows: new ort.Tensor('float32', rows.subarray(0, m * dim), [m, dim]),
      rowNorms: new ort.Tensor('float32', Float32Array.from(norms.subarray(0, m)), [1, m]),
      ...extra,
    });
  }
}
