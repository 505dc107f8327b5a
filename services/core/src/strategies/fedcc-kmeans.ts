// FedCC-KMeans (FUSS paper Eq. 10-11): the server pools every client's centroids and clusters the pool
// into K global centroids; the head is FedAvg.

import { composeStrategy } from './compose.js';
import { mergeByKMeans, poolCentroids, type KMeansMergeOptions } from './centroid-mergers.js';
import type { CentroidMerger, Strategy } from './strategy.js';

/** Options of {@link createFedCCKMeans}; all default as in {@link mergeByKMeans}. */
export type FedCCKMeansOptions = KMeansMergeOptions;

/**
 * Centroid merge of FedCC-KMeans (Eq. 10-11): k-means (K clusters) over the pooled centroids, pooled in
 * canonical client order. Module W does not weight the pooled rows (as the reference code). Details:
 * `pooledRows`, `inertia`, `iterations` and `clusterSizes` (pooled rows per global centroid).
 */
export function kmeansCentroidMerger(options: FedCCKMeansOptions = {}): CentroidMerger {
  return ({ updates, ctx, rng, pool: trimmed }) => {
    const pool = trimmed ?? poolCentroids(updates);
    const result = mergeByKMeans(pool, ctx.k, ctx.codeDim, rng, options);
    const clusterSizes = new Array<number>(ctx.k).fill(0);
    for (const cluster of result.assignments) clusterSizes[cluster]++;
    return {
      centroids: result.centroids,
      details: { pooledRows: result.assignments.length, inertia: result.inertia, iterations: result.iterations, clusterSizes },
    };
  };
}

/**
 * FedCC-KMeans (Eq. 10-11; head by FedAvg, Eq. 8). Registered as `fedcc-kmeans` (Euclidean on raw
 * centroids, as the reference code) and `fedcc-kmeans-cosine` (`cosine: true`: unit rows, unit centres).
 */
export function createFedCCKMeans(options: FedCCKMeansOptions = {}): Strategy {
  const cosine = options.cosine ?? false;
  return composeStrategy({
    name: cosine ? 'fedcc-kmeans-cosine' : 'fedcc-kmeans',
    description: cosine
      ? 'FedCC-KMeans, cosine: k-means on L2-normalised pooled client centroids, unit centres (Eq. 10-11); heads by FedAvg (Eq. 8)'
      : 'FedCC-KMeans: k-means on the pooled client centroids, Euclidean (Eq. 10-11); heads by FedAvg (Eq. 8)',
    mergeCentroids: kmeansCentroidMerger(options),
    centroidMerge: 'pool',
  });
}
