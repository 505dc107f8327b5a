// The training loss of engine.ts (head, Eq. 6, Eq. 5, MOON, FedProx) re-implemented in float64 with
// plain loops: no tfjs, no state. Slow; it is the yardstick for engine tests (finite differences,
// parity between engines), not a trainer.

import { HEAD_PARAM_NAMES, NONLINEAR_PARAM_NAMES, type HeadParamName, type HeadShape, type StepBatch, type StepConfig } from './engine.js';
import { UNIT_NORM_EPSILON } from './engine-constants.js';
import { centredFeatureCorrelationInto } from '../training/feature-correlation.js';

/**
 * Head weights as any numeric arrays, laid out as {@link HeadParams} (W row-major [out, in]).
 * `HeadParams` itself fits; finite differences pass Float64Array copies so a step h is not rounded
 * to float32.
 */
export type HeadValues = Readonly<Record<HeadParamName, ArrayLike<number>>>;

/** Output of {@link referenceLoss}. */
export interface ReferenceLossResult {
  /** Total loss `corr + cluster + moon + prox`. */
  loss: number;
  parts: { corr: number; cluster: number; moon: number; prox: number };
  /** How many query cells chose each centroid. [K] */
  clusterCounts: Int32Array;
  /**
   * The discrete choices the loss made: sign of every ReLU input of the head (training forward), of
   * every code cosine clamped by max(C, 0), and the argmax centroid of every query cell. The loss is
   * smooth between two inputs that give the same pattern; finite differences across a change are not
   * derivatives.
   */
  pattern: string;
}

/** Codes of the head for `rows` rows of `features` [rows, C]: Z (nonlinear branch) and S (code), [rows, D]. */
interface Forward {
  z: Float64Array;
  s: Float64Array;
}

/**
 * Head forward in float64. Row r uses the dropout masks of image `floor(r / cellsPerImage)` when
 * masks are given ([images, C]); without masks there is no dropout.
 * `relu` receives the sign of every ReLU input when given (for {@link ReferenceLossResult.pattern}).
 */
function headForward(
  head: HeadValues,
  shape: HeadShape,
  features: ArrayLike<number>,
  rows: number,
  masks?: { mask1: ArrayLike<number>; mask2: ArrayLike<number>; cellsPerImage: number },
  relu?: number[],
): Forward {
  const C = shape.channels;
  const D = shape.codeDim;
  const { l1Weight: w1, l1Bias: b1, l2Weight: w2, l2Bias: b2, l3Weight: w3, l3Bias: b3 } = head;
  const z = new Float64Array(rows * D);
  const s = new Float64Array(rows * D);
  const x1 = new Float64Array(C);
  const x2 = new Float64Array(C);
  const h = new Float64Array(C);
  for (let r = 0; r < rows; r++) {
    const maskBase = masks ? Math.floor(r / masks.cellsPerImage) * C : 0;
    for (let c = 0; c < C; c++) {
      const x = features[r * C + c];
      x1[c] = masks ? x * masks.mask1[maskBase + c] : x;
      x2[c] = masks ? x * masks.mask2[maskBase + c] : x;
    }
    // H = relu(X2 W2^T + b2)
    for (let j = 0; j < C; j++) {
      let pre = b2[j];
      for (let c = 0; c < C; c++) pre += w2[j * C + c] * x2[c];
      h[j] = pre > 0 ? pre : 0;
      relu?.push(pre > 0 ? 1 : 0);
    }
    // Z = H W3^T + b3;  S = X1 W1^T + b1 + Z
    for (let d = 0; d < D; d++) {
      let zd = b3[d];
      for (let j = 0; j < C; j++) zd += w3[d * C + j] * h[j];
      let sd = b1[d];
      for (let c = 0; c < C; c++) sd += w1[d * C + c] * x1[c];
      z[r * D + d] = zd;
      s[r * D + d] = sd + zd;
    }
  }
  return { z, s };
}

/** Copy of a [rows, dim] matrix with unit rows: x / max(|x|, UNIT_NORM_EPSILON). */
function unitRows(x: ArrayLike<number>, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let d = 0; d < dim; d++) sum += x[r * dim + d] * x[r * dim + d];
    const norm = Math.max(Math.sqrt(sum), UNIT_NORM_EPSILON);
    for (let d = 0; d < dim; d++) out[r * dim + d] = x[r * dim + d] / norm;
  }
  return out;
}

/** Row-wise dot products of two [rows, dim] matrices. */
function rowDots(a: Float64Array, b: Float64Array, rows: number, dim: number): Float64Array {
  const out = new Float64Array(rows);
  for (let r = 0; r < rows; r++) {
    let sum = 0;
    for (let d = 0; d < dim; d++) sum += a[r * dim + d] * b[r * dim + d];
    out[r] = sum;
  }
  return out;
}

/** log(1 + e^x) without overflow. */
function softplus(x: number): number {
  return Math.max(x, 0) + Math.log1p(Math.exp(-Math.abs(x)));
}

/**
 * Correspondence loss (Eq. 6): `sum_p w_p * -mean_{n,m}( max(C, 0) * (Fc - shift_p) )` with
 * F = Fa Fb^T on the unit features, Fc = F - rowmean(F) + mean(F), C the cosine of the codes.
 */
function correspondenceLoss(batch: StepBatch, unitCodes: Float64Array, D: number, clamp: number[]): number {
  const { cells: N } = batch;
  const fc = new Float64Array(N * N);
  let total = 0;
  for (let p = 0; p < batch.pairA.length; p++) {
    const a = batch.pairA[p];
    const b = batch.pairB[p];
    centredFeatureCorrelationInto(fc, batch, p);
    let sum = 0;
    for (let n = 0; n < N; n++) {
      for (let m = 0; m < N; m++) {
        let cos = 0;
        for (let d = 0; d < D; d++) cos += unitCodes[(a * N + n) * D + d] * unitCodes[(b * N + m) * D + d];
        clamp.push(cos > 0 ? 1 : 0);
        sum += Math.max(cos, 0) * (fc[n * N + m] - batch.pairShift[p]);
      }
    }
    total += batch.pairWeight[p] * -(sum / (N * N));
  }
  return total;
}

/**
 * Centroid loss (Eq. 5) on the unit codes of the query cells [cells, D] (constants here: the
 * reference has no gradients) and centroids M [K, D]:
 * `-mean_n <u_n, Mh_k(n)> + lambda * mean_{k != l} <Mh_k, Mh_l>` (no repulsion when K = 1).
 */
function centroidLoss(
  unitQuery: Float64Array,
  cells: number,
  centroids: ArrayLike<number>,
  D: number,
  k: number,
  lambda: number,
  counts: Int32Array,
  choices: number[],
): number {
  const mh = unitRows(centroids, k, D);
  let attraction = 0;
  for (let n = 0; n < cells; n++) {
    let best = 0;
    let bestInner = -Infinity;
    for (let j = 0; j < k; j++) {
      let inner = 0;
      for (let d = 0; d < D; d++) inner += unitQuery[n * D + d] * mh[j * D + d];
      if (inner > bestInner) {
        bestInner = inner;
        best = j; // first maximum on ties, as argmax
      }
    }
    counts[best]++;
    choices.push(best);
    attraction += bestInner;
  }
  let repulsion = 0;
  if (k > 1) {
    for (let j = 0; j < k; j++) {
      for (let l = 0; l < k; l++) {
        if (j === l) continue;
        for (let d = 0; d < D; d++) repulsion += mh[j * D + d] * mh[l * D + d];
      }
    }
    repulsion /= k * (k - 1);
  }
  return -attraction / cells + lambda * repulsion;
}

/**
 * The loss of one training step exactly as defined in engine.ts, in float64 plain loops.
 *
 * @param head - head weights (HeadParams or float64 copies), W row-major [out, in]
 * @param centroids - M [K, D]
 * @param shape - C and D
 * @param batch - the step batch, features [I, N, C]
 * @param config - K, lambda and the optional MOON / FedProx regularisers
 * @returns the loss, its parts, the cluster counts and the discrete decision pattern
 */
export function referenceLoss(
  head: HeadValues,
  centroids: ArrayLike<number>,
  shape: HeadShape,
  batch: StepBatch,
  config: StepConfig,
): ReferenceLossResult {
  const D = shape.codeDim;
  const rows = batch.images * batch.cells;
  const queryRows = batch.queries * batch.cells;
  const decisions: number[] = [];

  const local = headForward(
    head,
    shape,
    batch.features,
    rows,
    { mask1: batch.dropMask1, mask2: batch.dropMask2, cellsPerImage: batch.cells },
    decisions,
  );
  const unitCodes = unitRows(local.s, rows, D);

  const corr = correspondenceLoss(batch, unitCodes, D, decisions);

  const clusterCounts = new Int32Array(config.k);
  const cluster = centroidLoss(
    unitCodes.subarray(0, queryRows * D),
    queryRows,
    centroids,
    D,
    config.k,
    config.lambda,
    clusterCounts,
    decisions,
  );

  let moon = 0;
  if (config.moon) {
    const { globalHead, previousHead, tau, weight, scope } = config.moon;
    const queryFeatures = batch.features.subarray(0, queryRows * shape.channels);
    const pick = (f: Forward) => (scope === 'nonlinear' ? f.z : f.s).subarray(0, queryRows * D);
    const z = unitRows(pick(local), queryRows, D);
    const zg = unitRows(pick(headForward(globalHead, shape, queryFeatures, queryRows)), queryRows, D);
    const zp = unitRows(pick(headForward(previousHead, shape, queryFeatures, queryRows)), queryRows, D);
    const cosGlobal = rowDots(z, zg, queryRows, D);
    const cosPrevious = rowDots(z, zp, queryRows, D);
    let sum = 0;
    for (let n = 0; n < queryRows; n++) sum += softplus((cosPrevious[n] - cosGlobal[n]) / tau);
    moon = (weight * sum) / queryRows;
  }

  let prox = 0;
  if (config.prox) {
    const { globalHead, mu, scope } = config.prox;
    let squares = 0;
    for (const name of scope === 'nonlinear' ? NONLINEAR_PARAM_NAMES : HEAD_PARAM_NAMES) {
      const theta = head[name];
      const thetaGlobal = globalHead[name];
      for (let i = 0; i < theta.length; i++) squares += (theta[i] - thetaGlobal[i]) ** 2;
    }
    prox = (mu / 2) * squares;
  }

  return {
    loss: corr + cluster + moon + prox,
    parts: { corr, cluster, moon, prox },
    clusterCounts,
    pattern: decisions.join(','),
  };
}

/**
 * Inference codes of the head in float64 (no dropout): features [cells, C] -> S [cells, D].
 * The reference for `TrainingEngine.codes`.
 */
export function referenceCodes(head: HeadValues, shape: HeadShape, features: ArrayLike<number>, cells: number): Float64Array {
  return headForward(head, shape, features, cells).s;
}
