// Small dense vector helpers over row-major Float32Array matrices.

/**
 * Copy of a [rows, dim] matrix with every row scaled to unit L2 norm (zero rows stay zero).
 */
export function normalizeRows(matrix: Float32Array, rows: number, dim: number): Float32Array {
  const out = new Float32Array(rows * dim);
  for (let r = 0; r < rows; r++) {
    const base = r * dim;
    let sum = 0;
    for (let c = 0; c < dim; c++) sum += matrix[base + c] * matrix[base + c];
    const scale = sum > 0 ? 1 / Math.sqrt(sum) : 0;
    for (let c = 0; c < dim; c++) out[base + c] = matrix[base + c] * scale;
  }
  return out;
}

/**
 * Index of the first NaN or ±Infinity in `values`, or -1 when every value is finite. The common case
 * (all finite) is one branch-free pass: `x * 0` is ±0 for finite x and NaN otherwise, so the sum stays
 * 0 exactly when nothing is non-finite; only then is the index searched for.
 */
export function indexOfNonFinite(values: Float32Array): number {
  const n = values.length;
  let probe = 0;
  for (let i = 0; i < n; i++) probe += values[i] * 0;
  if (probe === 0) return -1;
  for (let i = 0; i < n; i++) if (!Number.isFinite(values[i])) return i;
  return -1;
}

/**
 * Mean cosine similarity over all pairs of `vectors` (equal lengths), accumulated in float64: 1 when
 * they all point the same way, about 0 when their directions are unrelated. A zero vector counts as
 * cosine 0 with every other. Undefined for fewer than two vectors.
 */
export function meanPairwiseCosine(vectors: readonly Float32Array[]): number | undefined {
  const n = vectors.length;
  if (n < 2) return undefined;
  const norms = vectors.map((v) => Math.sqrt(dot(v, v)));
  let sum = 0;
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      const denominator = norms[i] * norms[j];
      if (denominator > 0) sum += dot(vectors[i], vectors[j]) / denominator;
    }
  }
  return sum / ((n * (n - 1)) / 2);
}

function dot(a: Float32Array, b: Float32Array): number {
  if (a.length !== b.length) throw new RangeError(`vectors of ${a.length} and ${b.length} values`);
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * b[i];
  return s;
}
