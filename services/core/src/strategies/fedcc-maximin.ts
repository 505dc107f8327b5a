// FedCC-Maximin (FUSS paper Eq. 12): the server pools every client's centroids and keeps K of them by
// farthest-point selection, so a prototype only one client has survives; the head is FedAvg.

import { composeStrategy } from './compose.js';
import { mergeByMaximin, poolCentroids, type MaximinMergeOptions } from './centroid-mergers.js';
import type { CentroidMerger, Strategy } from './strategy.js';

/** Options of {@link createFedCCMaximin}. */
export type FedCCMaximinOptions = MaximinMergeOptions;

/**
 * Centroid merge of FedCC-Maximin (Eq. 12) over the pool in canonical client order, seeded start.
 * Module W does not enter (selection, not averaging). Details: `pooledRows`.
 */
export function maximinCentroidMerger(options: FedCCMaximinOptions = {}): CentroidMerger {
  return ({ updates, ctx, rng, pool: trimmed }) => {
    const pool = trimmed ?? poolCentroids(updates);
    return { centroids: mergeByMaximin(pool, ctx.k, ctx.codeDim, rng, options), details: { pooledRows: pool.length / ctx.codeDim } };
  };
}

/**
 * FedCC-Maximin (Eq. 12; head by FedAvg, Eq. 8). Registered as `fedcc-maximin` (raw Euclidean, as the
 * reference code) and `fedcc-maximin-cosine` (`cosine: true`: selection among unit rows).
 */
export function createFedCCMaximin(options: FedCCMaximinOptions = {}): Strategy {
  const cosine = options.cosine ?? false;
  return composeStrategy({
    name: cosine ? 'fedcc-maximin-cosine' : 'fedcc-maximin',
    description: cosine
      ? 'FedCC-Maximin, cosine: farthest-point selection among L2-normalised pooled client centroids (Eq. 12); heads by FedAvg (Eq. 8)'
      : 'FedCC-Maximin: farthest-point selection among the pooled client centroids, Euclidean (Eq. 12); heads by FedAvg (Eq. 8)',
    mergeCentroids: maximinCentroidMerger(options),
    centroidMerge: 'pool',
  });
}
