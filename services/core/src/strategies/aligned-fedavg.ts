// Aligned FedAvg: FedAvg whose centroid mean (Eq. 9) first matches each client's centroids to the
// previous global centroids (Hungarian), so clusters numbered differently by clients are not blended.
// Not in the paper; a baseline between FedAvg and FedCC.

import { mergeByAlignedMean } from './centroid-mergers.js';
import { composeStrategy } from './compose.js';
import type { CentroidMerger, Strategy } from './strategy.js';

/**
 * Centroid merge of aligned FedAvg: `mergeByAlignedMean` against `ctx.previous.centroids` with the
 * module W weights. Details: `permutedClients`, the ids of clients whose rows were reordered.
 */
export const alignedMeanCentroids: CentroidMerger = ({ updates, weights, ctx }) => {
  const { centroids, alignments } = mergeByAlignedMean(
    updates.map((u) => u.centroids),
    weights,
    ctx.previous.centroids,
    ctx.k,
    ctx.codeDim,
  );
  const permutedClients = updates.filter((_, i) => alignments[i].some((target, row) => target !== row)).map((u) => u.clientId);
  return { centroids, details: { permutedClients } };
};

/**
 * Aligned FedAvg: heads by FedAvg (Eq. 8), centroids by the weighted mean (Eq. 9) after aligning each
 * client's rows to the previous global centroids by minimum total Euclidean distance. Registered as
 * `aligned-fedavg`.
 */
export function createAlignedFedAvg(): Strategy {
  return composeStrategy({
    name: 'aligned-fedavg',
    description: 'Aligned FedAvg: heads by FedAvg (Eq. 8); centroids matched to the previous global ones (Hungarian), then averaged (Eq. 9)',
    mergeCentroids: alignedMeanCentroids,
    centroidMerge: 'mean',
  });
}
