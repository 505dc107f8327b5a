// Stable class ids across global versions: a merge (k-means, maximin) returns its K centroids in an
// order of its own; reordering them onto the previous version's centroids keeps "class 3" meaning
// the same thing from one version to the next. mIoU is unaffected (it Hungarian-matches anyway).

import { hungarianMinimize } from '../cluster/hungarian.js';
import { ShapeError } from '../errors.js';
import { normalizeRows } from '../math/vectors.js';

/** Added to off-diagonal costs: far below float32 resolution of a cosine, so it only breaks ties. */
const TIE_BREAK = 1e-9;

/** Result of {@link keepCentroidIds}. */
export interface StableCentroids {
  /** The merged centroids reordered, [K, D]: row `id` is the merged row `permutation[id]`. */
  centroids: Float32Array;
  /** `permutation[id]` is the merged row that became global id `id` (a permutation of 0..K-1). */
  permutation: number[];
}

/**
 * Reorders merged centroids so that each takes the id of the previous global centroid it matches:
 * the one-to-one matching minimising the total cosine distance `1 - cos(merged_i, previous_j)`
 * (Hungarian algorithm); among equally good matchings the merge's own order wins. A zero row has
 * cosine 0 with everything. Deterministic; returns new arrays.
 *
 * @param merged - [k, dim] the strategy's new centroids, in the merge's order
 * @param previous - [k, dim] the previous global centroids
 * @throws ShapeError when either is not [k, dim]
 * @throws NonFiniteError when a centroid holds NaN or Infinity
 */
export function keepCentroidIds(merged: Float32Array, previous: Float32Array, k: number, dim: number): StableCentroids {
  if (!Number.isInteger(k) || k < 1 || !Number.isInteger(dim) || dim < 1) throw new ShapeError(`k and dim must be integers >= 1, got ${k} and ${dim}`);
  for (const [what, matrix] of [['merged', merged], ['previous', previous]] as const) {
    if (matrix.length !== k * dim) throw new ShapeError(`${what} centroids have ${matrix.length} values, expected [${k}, ${dim}]`);
  }
  const a = normalizeRows(merged, k, dim);
  const b = normalizeRows(previous, k, dim);
  const cost = new Float64Array(k * k);
  for (let i = 0; i < k; i++) {
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += a[i * dim + c] * b[j * dim + c];
      // Ties (equal cosines) keep the merge's order.
      cost[i * k + j] = 1 - dot + (i === j ? 0 : TIE_BREAK);
    }
  }
  const idOfRow = hungarianMinimize(cost, k, k);
  const permutation = new Array<number>(k);
  const centroids = new Float32Array(k * dim);
  for (let row = 0; row < k; row++) {
    permutation[idOfRow[row]] = row;
    centroids.set(merged.subarray(row * dim, row * dim + dim), idOfRow[row] * dim);
  }
  return { centroids, permutation };
}
