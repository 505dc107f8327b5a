import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createRng } from '../math/rng.js';
import { EXACT, FLOAT64_TOLERANCE, expectClose } from '../test-support/expect-close.js';
import { ExactDistanceKernel, dotRows, nearestInto, squaredNormsInto } from './distance-kernel.js';

const FC_SEED = 0x6b6e;

/** The straightforward reference: Σ (x - r)² in float64, one pair at a time. */
function directSquaredDistance(points: Float32Array, i: number, rows: Float32Array, r: number, dim: number): number {
  let sum = 0;
  for (let j = 0; j < dim; j++) sum += (points[i * dim + j] - rows[r * dim + j]) ** 2;
  return sum;
}

const matrices = fc.integer({ min: 1, max: 9 }).chain((dim) =>
  fc.record({
    dim: fc.constant(dim),
    n: fc.integer({ min: 1, max: 50 }),
    k: fc.integer({ min: 1, max: 13 }),
    seed: fc.integer(),
  }),
);

/** Integer-valued float32 rows: both distance forms are exact, so nearest and ties must agree exactly. */
function integerRows(count: number, dim: number, seed: number): Float32Array {
  const rng = createRng(seed);
  return Float32Array.from({ length: count * dim }, () => rng.int(7) - 3);
}

describe('squaredNormsInto', () => {
  it('equals each row dotted with itself, bit for bit, for any row count', () => {
    const rng = createRng(1);
    for (const count of [1, 3, 4, 5, 9]) {
      const rows = Float32Array.from({ length: count * 7 }, () => rng.normal());
      const norms = squaredNormsInto(rows, count, 7, new Float64Array(count));
      for (let r = 0; r < count; r++) expect(norms[r]).toBe(dotRows(rows, r * 7, rows, r * 7, 7));
    }
  });
});

describe('ExactDistanceKernel', () => {
  it('finds the nearest row like a brute-force search, ties to the lower index (property)', () => {
    fc.assert(
      fc.property(matrices, ({ dim, n, k, seed }) => {
        const points = integerRows(n, dim, seed);
        const centroids = integerRows(k, dim, seed + 1);
        const out = new Int32Array(n);
        new ExactDistanceKernel(points, dim, squaredNormsInto(points, n, dim, new Float64Array(n))).nearest(centroids, k, out);
        for (let i = 0; i < n; i++) {
          let best = 0;
          for (let c = 1; c < k; c++) if (directSquaredDistance(points, i, centroids, c, dim) < directSquaredDistance(points, i, centroids, best, dim)) best = c;
          expect(out[i]).toBe(best);
        }
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('gives squared distances close to the direct sum, exactly 0 to a copy (property)', () => {
    fc.assert(
      fc.property(matrices, ({ dim, n, k, seed }) => {
        const rng = createRng(seed);
        const points = Float32Array.from({ length: n * dim }, () => 10 * rng.normal());
        // Row 0 is a copy of point 0; the others are arbitrary.
        const rows = Float32Array.from({ length: k * dim }, (_, j) => (j < dim ? points[j] : 10 * rng.normal()));
        const out = new Float64Array(k * n);
        new ExactDistanceKernel(points, dim, squaredNormsInto(points, n, dim, new Float64Array(n))).squaredDistances(rows, k, out);
        expect(out[0]).toBe(0);
        const expected = Array.from({ length: k * n }, (_, o) => directSquaredDistance(points, o % n, rows, Math.floor(o / n), dim));
        // The expanded form cancels against norms of ~100 * dim: absolute error ~1e-13.
        expectClose(out, expected, { atol: 1e-9, rtol: FLOAT64_TOLERANCE.rtol }, 'squared distances');
      }),
      { seed: FC_SEED, numRuns: 100 },
    );
  });

  it('sends a point to the first of duplicated centroids', () => {
    const points = new Float32Array([1, 1, 5, 5, 3, 3]);
    const centroids = new Float32Array([5, 5, 1, 1, 1, 1, 5, 5]);
    const out = new Int32Array(3);
    nearestInto(points, 3, 2, centroids, 4, out);
    // (3, 3) is equally far from (5, 5) and (1, 1): index 0 wins.
    expectClose(out, [1, 0, 0], EXACT);
  });
});
