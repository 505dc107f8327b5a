// Principal component analysis to two dimensions, for drawing the centroid map: the centroids of
// every version (rows) are centred together and projected on the two directions of largest
// variance, found by power iteration on X^T X with deflation (n x d with n*d up to a few hundred
// thousand: milliseconds in a browser, no d x d matrix). Presentation only: no model uses it.

export interface Projection {
  /** [x, y] per input row. */
  points: [number, number][];
  /** Share of the total variance along each axis, 0..1. */
  explained: [number, number];
}

const ITERATIONS = 200;
const TOLERANCE = 1e-10;

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}

function normalise(v: Float64Array): number {
  const norm = Math.sqrt(dot(v, v));
  if (norm > 0) for (let i = 0; i < v.length; i++) v[i] /= norm;
  return norm;
}

/** Leading unit eigenvector of X^T X orthogonal to `against` (0 vector when there is no variance left). */
function component(rows: Float64Array[], d: number, against: Float64Array[]): { vector: Float64Array; variance: number } {
  let v = new Float64Array(d);
  // A fixed start that is not orthogonal to typical directions: deterministic pictures.
  for (let j = 0; j < d; j++) v[j] = 1 + ((j * 7919) % 13) / 13;
  const orthogonalise = (x: Float64Array) => {
    for (const u of against) {
      const p = dot(x, u);
      for (let j = 0; j < d; j++) x[j] -= p * u[j];
    }
  };
  orthogonalise(v);
  if (normalise(v) === 0) return { vector: v, variance: 0 };
  let variance = 0;
  for (let it = 0; it < ITERATIONS; it++) {
    const next = new Float64Array(d);
    for (const row of rows) {
      const p = dot(row, v);
      for (let j = 0; j < d; j++) next[j] += p * row[j];
    }
    orthogonalise(next);
    const norm = normalise(next);
    if (norm === 0) return { vector: next, variance: 0 };
    const change = 1 - Math.abs(dot(next, v));
    v = next;
    variance = norm;
    if (change < TOLERANCE) break;
  }
  // Sign convention: the largest coordinate is positive, so the picture does not flip between polls.
  let largest = 0;
  for (let j = 1; j < d; j++) if (Math.abs(v[j]) > Math.abs(v[largest])) largest = j;
  if (v[largest] < 0) for (let j = 0; j < d; j++) v[j] = -v[j];
  return { vector: v, variance };
}

/** Projects `rows` (all of length d) on their first two principal components. */
export function pca2(input: readonly (readonly number[])[]): Projection {
  const n = input.length;
  if (n === 0) return { points: [], explained: [0, 0] };
  const d = input[0].length;
  const mean = new Float64Array(d);
  for (const row of input) for (let j = 0; j < d; j++) mean[j] += row[j] / n;
  const rows = input.map((row) => Float64Array.from(row, (x, j) => x - mean[j]));
  let total = 0;
  for (const row of rows) total += dot(row, row);
  const first = component(rows, d, []);
  const second = component(rows, d, first.variance > 0 ? [first.vector] : []);
  const points = rows.map((row) => [first.variance > 0 ? dot(row, first.vector) : 0, second.variance > 0 ? dot(row, second.vector) : 0] as [number, number]);
  return { points, explained: total > 0 ? [first.variance / total, second.variance / total] : [0, 0] };
}
