import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng, type Rng } from '../math/rng.js';
import { EXACT, expectClose } from '../test-support/expect-close.js';
import { kmeans } from './kmeans.js';
import { maximinSelect } from './maximin.js';

/** An Rng whose first `int` draw is fixed, to pin the starting point of a hand-worked case. */
function startAt(index: number): Rng {
  const rng = createRng(0);
  return { ...rng, int: () => index };
}

/** Rows of a [n, dim] array as arrays. */
function rows(data: Float32Array, dim: number): number[][] {
  return Array.from({ length: data.length / dim }, (_, i) => Array.from(data.subarray(i * dim, i * dim + dim)));
}

describe('maximinSelect', () => {
  it('adds the farthest point each time (hand-worked, 1-D)', () => {
    // From 0: 10 is farthest; then min distances are 1 -> 1, 4 -> 4, so 4 comes next, then 1.
    const points = new Float32Array([0, 1, 10, 4]);
    expectClose(maximinSelect(points, 1, 3, startAt(0)), [0, 10, 4], EXACT);
    expectClose(maximinSelect(points, 1, 4, startAt(0)), [0, 10, 4, 1], EXACT);
    // From 4: 10 (distance 6) beats 0 (distance 4); then 0 (min 4) beats 1 (min 3).
    expectClose(maximinSelect(points, 1, 3, startAt(3)), [4, 10, 0], EXACT);
  });

  it('keeps a small far-away point that k-means merges into a big cluster', () => {
    // Two big clusters at x = 0 and x = 10 and one lone point at x = 25 (2-D, small spread).
    const rng = createRng(11);
    const coords: number[] = [];
    for (let i = 0; i < 100; i++) coords.push(0.3 * rng.normal(), 0.3 * rng.normal());
    for (let i = 0; i < 100; i++) coords.push(10 + 0.3 * rng.normal(), 0.3 * rng.normal());
    coords.push(25, 0);
    const points = new Float32Array(coords);
    const isLonePoint = (row: number[]): boolean => row[0] === 25 && row[1] === 0;

    for (let seed = 0; seed < 10; seed++) {
      const selected = rows(maximinSelect(points, 2, 2, createRng(seed)), 2);
      expect(selected.some(isLonePoint)).toBe(true);
      // k-means prefers {0}, {10 + lone point}: splitting off the lone point would merge 200 points.
      const centroids = rows(kmeans(points, 2, { k: 2, rng: createRng(seed) }).centroids, 2);
      expect(centroids.every((c) => Math.hypot(c[0] - 25, c[1]) > 10)).toBe(true);
    }
  });

  it('returns every row once when k = n, and is deterministic for a seed', () => {
    const points = new Float32Array([1, 2, 3, 4, 5, 6, 1, 2]); // 4 points, the first and last equal
    const a = maximinSelect(points, 2, 4, createRng(5));
    const b = maximinSelect(points, 2, 4, createRng(5));
    expectClose(a, b, EXACT);
    const sortRows = (r: number[][]): string[] => r.map((x) => x.join(',')).sort();
    expect(sortRows(rows(a, 2))).toEqual(sortRows(rows(points, 2)));
  });

  it('rejects bad k and shapes', () => {
    const points = new Float32Array(6);
    const rng = createRng(0);
    expect(() => maximinSelect(points, 2, 0, rng)).toThrow(ConfigError);
    expect(() => maximinSelect(points, 2, 4, rng)).toThrow(/exceeds the number of points \(3\)/);
    expect(() => maximinSelect(points, 4, 1, rng)).toThrow(ShapeError);
  });
});
