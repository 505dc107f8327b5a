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
