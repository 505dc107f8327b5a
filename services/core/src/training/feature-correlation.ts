// The centred feature correlation Fc of Eq. 6 for one pair of a batch, in float64: the one plain-loop
// copy, shared by the shift calibration and the float64 reference loss (the engines compute it in
// their own graphs and are tested against that reference).

import type { StepBatch } from '../engines/engine.js';

/**
 * Writes Fc[n, m] = F[n, m] - mean_m F[n, m] + mean(F), with F = cosines of the pair's unit features,
 * into `out` [N, N] for pair `p` of `batch`.
 */
export function centredFeatureCorrelationInto(out: Float64Array, batch: Pick<StepBatch, 'cells' | 'channels' | 'featuresUnit' | 'pairA' | 'pairB'>, p: number): Float64Array {
  const { cells: N, channels: C, featuresUnit: fu } = batch;
  const a = batch.pairA[p];
  const b = batch.pairB[p];
  const rowMean = new Float64Array(N);
  let total = 0;
  for (let n = 0; n < N; n++) {
    let rowSum = 0;
    for (let m = 0; m < N; m++) {
      let dot = 0;
      for (let c = 0; c < C; c++) dot += fu[(a * N + n) * C + c] * fu[(b * N + m) * C + c];
      out[n * N + m] = dot;
      rowSum += dot;
    }
    rowMean[n] = rowSum / N;
    total += rowSum;
  }
  const mean = total / (N * N);
  for (let n = 0; n < N; n++) for (let m = 0; m < N; m++) out[n * N + m] += mean - rowMean[n];
  return out;
}
