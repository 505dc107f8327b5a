// FedAvg (McMahan et al. 2017) applied to the whole model: head and centroids are weighted means
// (FUSS paper Eq. 8-9). The baseline every FedCC variant is compared with.

import { composeStrategy } from './compose.js';
import type { CentroidMerger, Strategy } from './strategy.js';
import { weightedMean } from './weighted-mean.js';

/**
 * Centroid merge of FedAvg (Eq. 9): `M = Σ w_i M_i`, row k averaged with row k. Rows are averaged by
 * index, so clients whose clusters are numbered differently get blended prototypes (see
 * `aligned-fedavg` and the FedCC strategies for merges that are not).
 */
export const meanCentroids: CentroidMerger = ({ updates, weights }) => ({
  centroids: weightedMean(
    updates.map((u) => u.centroids),
    weights,
  ),
});

/**
 * FedAvg (Eq. 8-9): `θ = Σ w_i θ_i`, `M = Σ w_i M_i`, with `w_i` from module W. Registered as `fedavg`.
 */
export function createFedAvg(): Strategy {
  return composeStrategy({
    name: 'fedavg',
    description: 'FedAvg: weighted mean of heads (Eq. 8) and of centroids row by row (Eq. 9)',
    mergeCentroids: meanCentroids,
    centroidMerge: 'mean',
  });
}
