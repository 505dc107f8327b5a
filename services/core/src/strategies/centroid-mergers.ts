// Server-side merges of the participants' centroids into K global ones: pooling, FedCC-KMeans
// (Eq. 10-11), FedCC-Maximin (Eq. 12), and averaging after Hungarian alignment to the previous global
// centroids. Free functions over row-major Float32Arrays; strategies compose them.

import { hungarianMinimize } from '../cluster/hungarian.js';
import { kmeans, KMEANS_DEFAULT_MAX_ITERATIONS, KMEANS_DEFAULT_TOLERANCE, type KMeansResult } from '../cluster/kmeans.js';
import { maximinSelect } from '../cluster/maximin.js';
import { ConfigError, ShapeError } from '../errors.js';
import type { Rng } from '../math/rng.js';
import { normalizeRows } from '../math/vectors.js';
import { weightedMean } from './weighted-mean.js';

/**
 * Default k-means++ restarts of {@link mergeByKMeans}: the reference code runs scikit-learn's
 * `KMeans(n_clusters=K, n_init=10)` on the pooled centroids. The pool is small (|clients| x K rows).
 */
export const FEDCC_KMEANS_DEFAULT_RESTARTS = 10;

/** Options of {@link mergeByKMeans}. */
export interface KMeansMergeOptions {
  /**
   * Cluster directions instead of points: L2-normalise the pooled rows, run k-means, and return unit
   * centres (spherical k-means by projection). Default false: Euclidean on raw centroids, as the
   * reference code.
   */
  cosine?: boolean;
  /** k-means++ restarts, best inertia wins. Default {@link FEDCC_KMEANS_DEFAULT_RESTARTS}. */
  restarts?: number;
  /** Lloyd steps per restart. Default `KMEANS_DEFAULT_MAX_ITERATIONS`. */
  maxIterations?: number;
  /** Relative inertia change that stops a restart. Default `KMEANS_DEFAULT_TOLERANCE`. */
  tolerance?: number;
}

/** Options of {@link mergeByMaximin}. */
export interface MaximinMergeOptions {
  /** Select among L2-normalised pooled rows (returned unit length). Default false: raw Euclidean. */
  cosine?: boolean;
}

/** Result of {@link mergeByAlignedMean}. */
export interface AlignedMeanResult {
  /** The merged centroids, [K, D]. */
  centroids: Float32Array;
  /** Per client, the previous global centroid each of its rows was matched to ({@link alignToReference}). */
  alignments: Int32Array[];
}

/**
 * Stacks the clients' centroids into one pool, `[|clients| * K, D]`: client 0's K rows, then client
 * 1's, and so on (the input of Eq. 10-12). Strategies pass clients in canonical (client id) order.
 *
 * @param updates - anything holding `centroids`, each [K, D] with the same K * D
 * @throws ShapeError when there is no client or the centroid arrays differ in length
 */
export function poolCentroids(updates: readonly { centroids: Float32Array }[]): Float32Array {
  if (updates.length === 0) throw new ShapeError('no centroids to pool');
  const size = updates[0].centroids.length;
  const pool = new Float32Array(updates.length * size);
  updates.forEach(({ centroids }, i) => {
    if (centroids.length !== size) throw new ShapeError(`centroids of client ${i} have ${centroids.length} values, client 0 has ${size}`);
    pool.set(centroids, i * size);
  });
  return pool;
}

/**
 * FedCC-KMeans merge (Eq. 10-11): k-means with `k` clusters on the pooled centroids (k-means++ seeds,
 * several restarts, seeded); the cluster centres become the global centroids. Euclidean on raw rows by
 * default, as the reference code; `cosine` normalises the rows first and the centres after.
 *
 * Every pooled row counts once: the reference code runs unweighted k-means on the pool even in its
 * size-weighted variants, so module W does not enter here.
 *
 * @param pool - [n, dim] pooled centroids, n >= k ({@link poolCentroids})
 * @returns the k-means result; `centroids` [k, dim] (unit rows with `cosine`), `assignments` [n] the
 *   global centroid each pooled row joined, `inertia` in the space clustered (unit rows with `cosine`,
 *   measured before the centres are normalised)
 * @throws ShapeError / ConfigError as `kmeans` (e.g. k > n)
 */
export function mergeByKMeans(pool: Float32Array, k: number, dim: number, rng: Rng, options: KMeansMergeOptions = {}): KMeansResult {
  const points = options.cosine ? normalizeRows(pool, rowCount(pool, dim), dim) : pool;
  const result = kmeans(points, dim, {
    k,
    rng,
    restarts: options.restarts ?? FEDCC_KMEANS_DEFAULT_RESTARTS,
    maxIterations: options.maxIterations ?? KMEANS_DEFAULT_MAX_ITERATIONS,
    tolerance: options.tolerance ?? KMEANS_DEFAULT_TOLERANCE,
  });
  return options.cosine ? { ...result, centroids: normalizeRows(result.centroids, k, dim) } : result;
}

/**
 * FedCC-Maximin merge (Eq. 12): from a seeded random pooled row, repeatedly take the pooled row
 * farthest (largest minimum Euclidean distance) from those taken, until `k`. Rows are kept as they
 * are, so a prototype seen by a single client survives if it is far from the rest. Like
 * {@link mergeByKMeans} it ignores module W. (The reference code starts at the first pooled row;
 * DESIGN asks for a seeded random start.)
 *
 * @param pool - [n, dim] pooled centroids, n >= k
 * @param rng - draws the starting row
 * @returns [k, dim] in selection order (unit rows with `cosine`)
 * @throws ShapeError / ConfigError as `maximinSelect`
 */
export function mergeByMaximin(pool: Float32Array, k: number, dim: number, rng: Rng, options: MaximinMergeOptions = {}): Float32Array {
  const points = options.cosine ? normalizeRows(pool, rowCount(pool, dim), dim) : pool;
  return maximinSelect(points, dim, k, rng);
}

/**
 * Matches a client's K centroids one-to-one to the K reference (previous global) centroids so that
 * the sum of Euclidean distances of matched pairs is minimal (Hungarian algorithm). Clients start a
 * round from the global centroids but may swap or drift; aligning before averaging undoes the swaps.
 *
 * @param centroids - the client's [k, dim]
 * @param reference - the previous global [k, dim]
 * @returns [k]: `alignment[i]` is the reference row client row i is matched to (a permutation of 0..k-1)
 * @throws ShapeError when a matrix is not [k, dim]
 * @throws NonFiniteError when a distance is not finite (non-finite input)
 */
export function alignToReference(centroids: Float32Array, reference: Float32Array, k: number, dim: number): Int32Array {
  checkMatrix(centroids, k, dim, 'client centroids');
  checkMatrix(reference, k, dim, 'reference centroids');
  const cost = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let d = 0;
      for (let c = 0; c < dim; c++) {
        const diff = centroids[i * dim + c] - reference[j * dim + c];
        d += diff * diff;
      }
      cost[i * k + j] = Math.sqrt(d);
    }
  }
  return hungarianMinimize(cost, k, k);
}

/**
 * Aligned FedAvg of centroids: each client's rows are permuted onto the reference rows by
 * {@link alignToReference}, then averaged with the client weights (Eq. 9 after alignment):
 * `M_j = Σ_i w_i M_i[π_i⁻¹(j)]`. With clients holding the same prototypes in different orders this
 * recovers the prototypes, where plain FedAvg (Eq. 9) would blend them.
 *
 * @param clientCentroids - N arrays [k, dim]
 * @param weights - N weights (module W), as `weightedMean`
 * @param reference - the previous global centroids [k, dim]
 * @throws ShapeError when shapes disagree
 */
export function mergeByAlignedMean(
  clientCentroids: readonly Float32Array[],
  weights: ArrayLike<number>,
  reference: Float32Array,
  k: number,
  dim: number,
): AlignedMeanResult {
  const alignments: Int32Array[] = [];
  const permuted = clientCentroids.map((centroids) => {
    const alignment = alignToReference(centroids, reference, k, dim);
    alignments.push(alignment);
    const out = new Float32Array(k * dim);
    for (let i = 0; i < k; i++) out.set(centroids.subarray(i * dim, i * dim + dim), alignment[i] * dim);
    return out;
  });
  return { centroids: weightedMean(permuted, weights), alignments };
}

function rowCount(matrix: Float32Array, dim: number): number {
  if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`dim must be an integer >= 1, got ${dim}`);
  if (matrix.length % dim !== 0) throw new ShapeError(`pool has ${matrix.length} values, not a multiple of dim ${dim} ([n, dim] expected)`);
  return matrix.length / dim;
}

function checkMatrix(matrix: Float32Array, k: number, dim: number, what: string): void {
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`k must be an integer >= 1, got ${k}`);
  if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`dim must be an integer >= 1, got ${dim}`);
  if (matrix.length !== k * dim) throw new ShapeError(`${what} have ${matrix.length} values, expected [${k}, ${dim}] = ${k * dim}`);
}
