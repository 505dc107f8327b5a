// Client weights of one aggregation (module W of the paper's ablation, DESIGN section 3.2).

import { AggregationError } from './aggregation-error.js';

/**
 * Aggregation weights of the participants (module W): `w_i = n_i / Σ_j n_j` when `weighted`, else
 * `w_i = 1 / |clients|` (DESIGN section 3.2, the weights of Eq. 8-9). Computed in float64; the
 * weights sum to 1 up to rounding.
 *
 * The reference code weights by each participant's number of training batches; FUSS uses the number
 * of images, which is what participants report.
 *
 * @param samples - n_i per client, positive finite numbers (updates are checked to be integers upstream)
 * @param weighted - module W on (size weighting) or off (uniform)
 * @returns [|clients|] weights, float64
 * @throws AggregationError `no-updates` for an empty list, `bad-sample-count` for a non-positive or non-finite count
 */
export function clientWeights(samples: readonly number[], weighted: boolean): Float64Array {
  const n = samples.length;
  if (n === 0) throw new AggregationError('no-updates', 'no clients to weight');
  let total = 0;
  for (let i = 0; i < n; i++) {
    const s = samples[i];
    if (!Number.isFinite(s) || s <= 0) throw new AggregationError('bad-sample-count', `sample count ${i} must be positive and finite, got ${s}`);
    total += s;
  }
  const weights = new Float64Array(n);
  for (let i = 0; i < n; i++) weights[i] = weighted ? samples[i] / total : 1 / n;
  return weights;
}
