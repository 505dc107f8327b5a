// Assembles a backbone's outputs into one feature map inside onnxruntime: per-output L2 normalisation,
// bilinear resizing of the coarser outputs to the finest grid, concatenation and, for the feature cache,
// rounding to float16. Done in JavaScript this was 35-40 ms per CamVid image on top of a 21 ms forward
// pass (bench/RESULTS.md, "Feature extraction"); onnxruntime's Resize, reductions and Cast are native and
// threaded. The graph is a second, small CPU session fed with the backbone's output tensors, rather
// than nodes spliced into the backbone's own model: the model file stays as given (its sha256 is the
// cache key), and the maths is the same whichever execution provider runs the backbone.
//
// Same maths as the reference helpers in feature-ops.ts (half-pixel bilinear, zero cells stay zero),
// in float32 where they accumulate norms in float64: values agree to a few float32 ulps.

import type * as Ort from 'onnxruntime-node';
import { GraphBuilder } from '../onnx/graph-builder.js';
import { OnnxDataType } from '../onnx/model-builder.js';
import { transposePlanes } from '../training/head-codes.js';
import type { FeatureMap } from './backbone.js';
import { bilinearResizeMatrix } from './feature-ops.js';

/** Smallest normal float32: the floor under a cell's squared norm, so an all-zero cell stays zero. */
const SMALLEST_NORMAL_FLOAT32 = 2 ** -126;

/** The shape of one backbone output as the assembly graph sees it: [1, channels, height, width]. */
export interface OutputGrid {
  channels: number;
  height: number;
  width: number;
}

export interface FeatureGraphSpec {
  /** Channels of each output, in the descriptor's order. */
  channels: readonly number[];
  /** Index of the output whose grid every other output is resized to (see {@link finestOutput}). */
  finest: number;
  /** L2-normalise each output's channel vector per cell before resizing. */
  l2: boolean;
  /** Also output the map rounded to float16 (`features_f16`), with `features` the rounded values. */
  float16: boolean;
}

/** Index of the output with the most cells (the first of equals): every other one is resized to its grid. */
export function finestOutput(outputs: readonly OutputGrid[]): number {
  let finest = 0;
  outputs.forEach((o, i) => {
    if (o.height * o.width > outputs[finest].height * outputs[finest].width) finest = i;
  });
  return finest;
}

/**
 * The assembly graph. Inputs: `output_i` [1, C_i, h_i, w_i] float32, and for each output i other than
 * the finest its bilinear weights `resize_x_i` [w_i, W] and `resize_y_i` [H, h_i] (computed per size by
 * {@link resizeInputs}, so that one graph serves every image size). Output: `features` [1, sum C, H, W]
 * float32 on the finest grid, and with `float16` also `features_f16` (the same map as IEEE half, round to
 * nearest even) where `features` then holds the rounded values. Resizing is two matrix products
 * (Ay X Ax^T): onnxruntime's own Resize took 11 ms for MobileNetV2's 576 x 23 x 30 output on one thread.
 */
export function buildFeatureGraph(spec: FeatureGraphSpec): Uint8Array {
  const g = new GraphBuilder('fuss-feature-assembly');
  const inputs = spec.channels.map((c, i) => g.input(`output_${i}`, [1, c, `h_${i}`, `w_${i}`]));
  const floor = spec.l2 ? g.constant([SMALLEST_NORMAL_FLOAT32]) : '';
  const normalised = inputs.map((x) => {
    if (!spec.l2) return x;
    const squaredNorm = g.op('ReduceSumSquare', [x], { axes: [1], keepdims: 1 });
    return g.mul(x, g.op('Reciprocal', [g.sqrt(g.atLeast(squaredNorm, floor))]));
  });
  const [height, width] = [`h_${spec.finest}`, `w_${spec.finest}`];
  const onGrid = normalised.map((x, i) => {
    if (i === spec.finest) return x;
    const alongX = g.input(`resize_x_${i}`, [`w_${i}`, width]);
    const alongY = g.input(`resize_y_${i}`, [height, `h_${i}`]);
    return g.matmul(alongY, g.matmul(x, alongX)); // [1, C, h, W], then [1, C, H, W]
  });
  const concatenated = onGrid.length === 1 ? onGrid[0] : g.op('Concat', onGrid, { axis: 1 });
  const total = spec.channels.reduce((sum, c) => sum + c, 0);
  const dims = [1, total, height, width];
  if (spec.float16) {
    const half = g.op('Cast', [concatenated], { to: OnnxDataType.float16 });
    g.output(half, 'features_f16', dims, OnnxDataType.float16);
    g.output(g.toFloat(half), 'features', dims);
  } else {
    g.output(concatenated, 'features', dims);
  }
  return g.build();
}

/** The `resize_x_i` and `resize_y_i` inputs of {@link buildFeatureGraph} for these output sizes. */
export function resizeInputs(outputs: readonly OutputGrid[], finest: number): Record<string, { dims: number[]; data: Float32Array }> {
  const grid = outputs[finest];
  const inputs: Record<string, { dims: number[]; data: Float32Array }> = {};
  outputs.forEach((o, i) => {
    if (i === finest) return;
    const alongX = bilinearResizeMatrix(o.width, grid.width); // [W, w]
    inputs[`resize_x_${i}`] = { dims: [o.width, grid.width], data: transposePlanes(alongX, grid.width, o.width) };
    inputs[`resize_y_${i}`] = { dims: [grid.height, o.height], data: bilinearResizeMatrix(o.height, grid.height) };
  });
  return inputs;
}

/**
 * Runs the assembly graph on a backbone's outputs. A session is built on first use for each (finest
 * output, float16) pair that occurs (at most two per output, whatever the image sizes) and kept until
 * {@link close}.
 */
export class FeatureAssembler {
  private readonly sessions = new Map<string, Promise<Ort.InferenceSession>>();

  constructor(
    private readonly ort: typeof Ort,
    private readonly options: { l2: boolean; threads: number },
  ) {}

  /**
   * @param maps one [1, C, h, w] float32 tensor per backbone output, in the descriptor's order
   * @param float16 round to float16 (the feature cache's precision) and return the half bits too
   */
  async assemble(maps: readonly Ort.Tensor[], float16: boolean): Promise<FeatureMap> {
    const outputs = maps.map((m) => ({ channels: m.dims[1], height: m.dims[2], width: m.dims[3] }));
    const finest = finestOutput(outputs);
    const { height, width } = outputs[finest];
    const channels = outputs.reduce((sum, o) => sum + o.channels, 0);
    if (maps.length === 1 && !this.options.l2 && !float16) {
      return { channels, height, width, data: maps[0].data as Float32Array };
    }
    const session = await this.sessionFor({ channels: outputs.map((o) => o.channels), finest, l2: this.options.l2, float16 });
    const feeds: Record<string, Ort.Tensor> = Object.fromEntries(maps.map((m, i) => [`output_${i}`, m]));
    for (const [name, { dims, data }] of Object.entries(resizeInputs(outputs, finest))) feeds[name] = new this.ort.Tensor('float32', data, dims);
    const results = await session.run(feeds, float16 ? ['features', 'features_f16'] : ['features']);
    const data = results.features.data as Float32Array;
    const half = float16 ? (results.features_f16.data as Uint16Array) : undefined;
    return { channels, height, width, data, half };
  }

  private sessionFor(spec: FeatureGraphSpec): Promise<Ort.InferenceSession> {
    const key = `${spec.channels.join(',')}|${spec.finest}|${spec.float16}`;
    let session = this.sessions.get(key);
    if (!session) {
      session = this.ort.InferenceSession.create(buildFeatureGraph(spec), {
        intraOpNumThreads: this.options.threads,
        interOpNumThreads: 1,
        graphOptimizationLevel: 'all',
        // Without this, this pool's threads spin after each run and take the cores from the backbone's
        // pool (and back): 30 ms per CamVid image instead of 20 on 2 cores.
        extra: { session: { intra_op: { allow_spinning: '0' } } },
      });
      // A failed build is not kept: the next call tries again (and reports its own error).
      session.catch(() => this.sessions.delete(key));
      this.sessions.set(key, session);
    }
    return session;
  }

  /** Sessions built so far (bounded by the number of outputs, twice: float32 and float16). */
  get openSessions(): number {
    return this.sessions.size;
  }

  async close(): Promise<void> {
    const sessions = [...this.sessions.values()];
    this.sessions.clear();
    for (const s of await Promise.allSettled(sessions)) if (s.status === 'fulfilled') await s.value.release();
  }
}
