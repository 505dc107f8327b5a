// Maximin (farthest-point) selection: FedCC-Maximin picks K of the pooled client centroids with it
// (DESIGN Eq. 12), so a small but distant cluster seen by one client survives aggregation.

import { ConfigError, ShapeError } from '../errors.js';
import type { Rng } from '../math/rng.js';

/**
 * Farthest-point selection (DESIGN Eq. 12): start at a uniformly drawn point, then repeatedly add the
 * point whose minimum Euclidean distance to the points chosen so far is largest, until `k` are chosen.
 * Ties go to the lower index; a chosen point is never chosen again, even among duplicates.
 * Distances are computed directly as `Σ (x - y)²` on the raw values (the reference code uses raw
 * Euclidean distance on centroids; the pool is small, |clients| x K rows).
 *
 * @param points - [n, dim] row-major, e.g. the pooled centroids of all clients
 * @param dim - values per point
 * @param k - number of points to select, 1 <= k <= n
 * @param rng - draws the first point (one `rng.int(n)` call)
 * @returns the selected rows in selection order, [k, dim] (copies)
 * @throws ShapeError when `points.length` is not a multiple of `dim`
 * @throws ConfigError when k < 1 or k > n
 */
export function maximinSelect(points: Float32Array, dim: number, k: number, rng: Rng): Float32Array {
  if (!Number.isInteger(dim) || dim < 1) throw new ShapeError(`dim must be an integer >= 1, got ${dim}`);
  if (points.length % dim !== 0) {
    throw new ShapeError(`points have ${points.length} values, not a multiple of dim ${dim} ([n, dim] expected)`);
  }
  const n = points.length / dim;
  if (!Number.isInteger(k) || k < 1) throw new ConfigError(`maximin k must be an integer >= 1, got ${k}`);
  if (k > n) throw new ConfigError(`maximin k = ${k} exceeds the number of points (${n})`);

  const selected = new Float32Array(k * dim);
  const minDistance = new Float64Array(n).fill(Infinity); // squared; -1 marks a chosen point
  let chosen = rng.int(n);
  for (let c = 0; c < k; c++) {
    const offset = chosen * dim;
    selected.set(points.subarray(offset, offset + dim), c * dim);
    minDistance[chosen] = -1;
    if (c === k - 1) break;
    let next = -1;
    let nextDistance = -Infinity;
    for (let i = 0; i < n; i++) {
      if (minDistance[i] < 0) continue;
      let d = 0;
      const row = i * dim;
      for (let j = 0; j < dim; j++) {
        const diff = points[row + j] - points[offset + j];
        d += diff * diff;
      }
      if (d < minDistance[i]) minDistance[i] = d;
      if (minDistance[i] > nextDistance) {
        nextDistance = minDistance[i];
        next = i;
      }
    }
    chosen = next;
  }
  return selected;
}
