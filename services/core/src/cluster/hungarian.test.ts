import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { NonFiniteError, ShapeError } from '../errors.js';
import { FLOAT64_TOLERANCE, expectCloseScalar } from '../test-support/expect-close.js';
import { assignmentTotal, hungarianMaximize, hungarianMinimize } from './hungarian.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x4875;

/** Optimal total by enumerating every injective map from the smaller side into the larger. */
function bruteForceMin(cost: Float64Array, rows: number, cols: number): number {
  const small = Math.min(rows, cols);
  const large = Math.max(rows, cols);
  const at = (s: number, l: number): number => (rows <= cols ? cost[s * cols + l] : cost[l * cols + s]);
  const used = new Array<boolean>(large).fill(false);
  let best = Infinity;
  const visit = (s: number, total: number): void => {
    if (s === small) {
      best = Math.min(best, total);
      return;
    }
    for (let l = 0; l < large; l++) {
      if (used[l]) continue;
      used[l] = true;
      visit(s + 1, total + at(s, l));
      used[l] = false;
    }
  };
  visit(0, 0);
  return best;
}

/** Each row gets a distinct column or -1, and exactly min(rows, cols) rows are assigned. */
function expectValidAssignment(assignment: Int32Array, rows: number, cols: number): void {
  expect(assignment.length).toBe(rows);
  const columns = Array.from(assignment).filter((c) => c !== -1);
  expect(columns.length).toBe(Math.min(rows, cols));
  expect(new Set(columns).size).toBe(columns.length);
  for (const c of columns) expect(c >= 0 && c < cols).toBe(true);
}

const matrices = fc
  .record({ rows: fc.integer({ min: 1, max: 6 }), cols: fc.integer({ min: 1, max: 6 }) })
  .chain(({ rows, cols }) =>
    fc.record({
      rows: fc.constant(rows),
      cols: fc.constant(cols),
      values: fc.array(fc.oneof(fc.integer({ min: -50, max: 50 }), fc.double({ min: -1e3, max: 1e3, noNaN: true })), {
        minLength: rows * cols,
        maxLength: rows * cols,
      }),
    }),
  );

describe('hungarianMinimize', () => {
  it('solves a hand-worked 3x3 case', () => {
    // Rows pick columns 1, 0, 2: 1 + 2 + 2 = 5 (the diagonal costs 4 + 5 + 2 = 11).
    const cost = new Float64Array([4, 1, 3, 2, 5, 6, 3, 2, 2]);
    expect(Array.from(hungarianMinimize(cost, 3, 3))).toEqual([1, 0, 2]);
  });

  it('leaves the extra rows of a tall matrix unassigned', () => {
    // Column 0 goes to row 2 (cost 0), column 1 to row 0 (cost 1); row 1 is left out.
    const cost = new Float64Array([5, 1, 6, 7, 0, 9]);
    expect(Array.from(hungarianMinimize(cost, 3, 2))).toEqual([1, -1, 0]);
  });

  it('handles empty matrices', () => {
    expect(Array.from(hungarianMinimize(new Float64Array(0), 0, 3))).toEqual([]);
    expect(Array.from(hungarianMinimize(new Float64Array(0), 2, 0))).toEqual([-1, -1]);
  });

  it('matches brute force on random matrices up to 6x6, square and rectangular (property)', () => {
    fc.assert(
      fc.property(matrices, ({ rows, cols, values }) => {
        const cost = Float64Array.from(values);
        const assignment = hungarianMinimize(cost, rows, cols);
        expectValidAssignment(assignment, rows, cols);
        expectCloseScalar(assignmentTotal(cost, cols, assignment), bruteForceMin(cost, rows, cols), FLOAT64_TOLERANCE, 'total cost');
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('returns a permutation at least as good as the identity on square matrices (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }).chain((n) =>
          fc.tuple(fc.constant(n), fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: n * n, maxLength: n * n })),
        ),
        ([n, values]) => {
          const cost = Float64Array.from(values);
          const assignment = hungarianMinimize(cost, n, n);
          expect(Array.from(assignment).sort((a, b) => a - b)).toEqual(Array.from({ length: n }, (_, i) => i));
          let identity = 0;
          for (let i = 0; i < n; i++) identity += cost[i * n + i];
          expect(assignmentTotal(cost, n, assignment)).toBeLessThanOrEqual(identity);
        },
      ),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('rejects wrong sizes and non-finite costs', () => {
    expect(() => hungarianMinimize(new Float64Array(5), 2, 3)).toThrow(ShapeError);
    expect(() => hungarianMinimize(new Float64Array([1, Number.NaN]), 1, 2)).toThrow(NonFiniteError);
    expect(() => hungarianMinimize(new Float64Array([1, Infinity]), 2, 1)).toThrow(/\[1, 0\]/);
  });
});

describe('hungarianMaximize', () => {
  it('maximises profit (hand-worked confusion matrix)', () => {
    // Clusters 0, 1, 2 hold mostly classes 2, 0, 1: 9 + 8 + 7 matched pixels.
    const profit = new Float64Array([1, 0, 9, 8, 1, 0, 0, 7, 2]);
    expect(Array.from(hungarianMaximize(profit, 3, 3))).toEqual([2, 0, 1]);
  });

  it('equals minimising the negated matrix (property)', () => {
    fc.assert(
      fc.property(matrices, ({ rows, cols, values }) => {
        const profit = Float64Array.from(values);
        const assignment = hungarianMaximize(profit, rows, cols);
        expectValidAssignment(assignment, rows, cols);
        const negated = profit.map((v) => -v);
        expectCloseScalar(-assignmentTotal(profit, cols, assignment), bruteForceMin(negated, rows, cols), FLOAT64_TOLERANCE, 'total profit');
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });
});
