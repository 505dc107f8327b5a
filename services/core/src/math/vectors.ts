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
