// Optimal rectangular assignment (Kuhn-Munkres with potentials). Evaluation matches clusters to
// classes with it, maximising matched pixels (DESIGN "Evaluation"), like scipy's linear_sum_assignment
// in the STEGO reference code.

import { NonFiniteError, ShapeError } from '../errors.js';

/**
 * Minimum-cost assignment of rows to columns. Exactly `min(rows, cols)` pairs are made, each row and
 * each column used at most once, and the total cost of the pairs is minimal.
 *
 * Shortest augmenting paths with row/column potentials (Kuhn-Munkres in the Jonker-Volgenant form),
 * O(min² · max) time, O(rows + cols) extra memory besides a transposed copy when rows > cols.
 *
 * @param cost - [rows, cols] row-major, finite values
 * @returns [rows]: the column assigned to each row, or -1 for rows left out (only when rows > cols)
 * @throws ShapeError when `cost.length !== rows * cols`
 * @throws NonFiniteError when a cost is NaN or infinite
 */
export function hungarianMinimize(cost: Float64Array, rows: number, cols: number): Int32Array {
  checkMatrix(cost, rows, cols);
  const result = new Int32Array(rows).fill(-1);
  if (rows === 0 || cols === 0) return result;
  if (rows <= cols) {
    const columnOfRow = solveWide(cost, rows, cols);
    result.set(columnOfRow);
    return result;
  }
  // The solver needs rows <= cols: solve the transpose, then invert the matching.
  const transposed = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    for (let c = 0; c < cols; c++) transposed[c * rows + r] = cost[r * cols + c];
  }
  const rowOfColumn = solveWide(transposed, cols, rows);
  for (let c = 0; c < cols; c++) result[rowOfColumn[c]] = c;
  return result;
}

/**
 * Maximum-profit assignment: {@link hungarianMinimize} on the negated matrix.
 *
 * @param profit - [rows, cols] row-major, finite values (e.g. a cluster x class confusion matrix)
 * @returns [rows]: the column assigned to each row, or -1
 */
export function hungarianMaximize(profit: Float64Array, rows: number, cols: number): Int32Array {
  checkMatrix(profit, rows, cols);
  const negated = new Float64Array(profit.length);
  for (let i = 0; i < profit.length; i++) negated[i] = -profit[i];
  return hungarianMinimize(negated, rows, cols);
}

/** Total of `matrix[r, assignment[r]]` over assigned rows. */
export function assignmentTotal(matrix: Float64Array, cols: number, assignment: Int32Array): number {
  let total = 0;
  for (let r = 0; r < assignment.length; r++) {
    if (assignment[r] >= 0) total += matrix[r * cols + assignment[r]];
  }
  return total;
}

/**
 * Core solver for n <= m (e-maxx formulation, 1-based internally; index 0 is a virtual column).
 * Returns the column of each row, [n].
 */
function solveWide(a: Float64Array, n: number, m: number): Int32Array {
  const u = new Float64Array(n + 1); // row potentials
  const v = new Float64Array(m + 1); // column potentials
  const rowOfColumn = new Int32Array(m + 1); // p[j]: row matched to column j, 0 = free
  const way = new Int32Array(m + 1); // previous column on the shortest path
  const minReduced = new Float64Array(m + 1);
  const used = new Uint8Array(m + 1);

  for (let i = 1; i <= n; i++) {
    rowOfColumn[0] = i;
    let j0 = 0;
    minReduced.fill(Infinity);
    used.fill(0);
    // Grow a shortest-path tree from row i until it reaches a free column.
    do {
      used[j0] = 1;
      const i0 = rowOfColumn[j0];
      const rowOffset = (i0 - 1) * m - 1;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= m; j++) {
        if (used[j]) continue;
        const reduced = a[rowOffset + j] - u[i0] - v[j];
        if (reduced < minReduced[j]) {
          minReduced[j] = reduced;
          way[j] = j0;
        }
        if (minReduced[j] < delta) {
          delta = minReduced[j];
          j1 = j;
        }
      }
      for (let j = 0; j <= m; j++) {
        if (used[j]) {
          u[rowOfColumn[j]] += delta;
          v[j] -= delta;
        } else {
          minReduced[j] -= delta;
        }
      }
      j0 = j1;
    } while (rowOfColumn[j0] !== 0);
    // Augment along the path back to the virtual column.
    do {
      const j1 = way[j0];
      rowOfColumn[j0] = rowOfColumn[j1];
      j0 = j1;
    } while (j0 !== 0);
  }

  const columnOfRow = new Int32Array(n);
  for (let j = 1; j <= m; j++) {
    if (rowOfColumn[j] !== 0) columnOfRow[rowOfColumn[j] - 1] = j - 1;
  }
  return columnOfRow;
}

function checkMatrix(matrix: Float64Array, rows: number, cols: number): void {
  if (!Number.isInteger(rows) || rows < 0 || !Number.isInteger(cols) || cols < 0) {
    throw new ShapeError(`assignment matrix dims must be non-negative integers, got [${rows}, ${cols}]`);
  }
  if (matrix.length !== rows * cols) {
    throw new ShapeError(`assignment matrix has ${matrix.length} values, expected [${rows}, ${cols}] = ${rows * cols}`);
  }
  for (let i = 0; i < matrix.length; i++) {
    if (!Number.isFinite(matrix[i])) {
      throw new NonFiniteError(`assignment matrix holds ${matrix[i]} at [${Math.floor(i / cols)}, ${i % cols}]`);
    }
  }
}
