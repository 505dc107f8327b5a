import { describe, expect, it } from 'vitest';
import { pca2 } from './pca';

/** A seeded generator (mulberry32), so the test data are fixed. */
function rng(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('pca2', () => {
  it('keeps every distance between points laid on a plane in 10 dimensions, largest variance first', () => {
    const random = rng(1);
    const u = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    const w = [0, 0, 0, 0.6, 0.8, 0, 0, 0, 0, 0];
    const rows = Array.from({ length: 40 }, () => [(random() - 0.5) * 10, (random() - 0.5) * 2]).map(([a, b]) => u.map((x, j) => 3 + a * x + b * w[j]));
    const { points, explained } = pca2(rows);
    expect(explained[0] + explained[1]).toBeCloseTo(1, 6);
    // Spreads of 10 and 2 along the plane's axes: about 25 times the variance along the first.
    expect(explained[0]).toBeGreaterThan(0.9);
    const distance = (a: readonly number[], b: readonly number[]) => Math.hypot(...a.map((x, j) => x - b[j]));
    for (let i = 0; i < rows.length; i++) {
      for (let j = 0; j < i; j++) expect(distance(points[i], points[j])).toBeCloseTo(distance(rows[i], rows[j]), 6);
    }
  });

  it('gives the same picture for the same data, and handles no variance, one row and no rows', () => {
    const random = rng(2);
    const rows = Array.from({ length: 12 }, () => Array.from({ length: 5 }, () => random()));
    expect(pca2(rows)).toEqual(pca2(rows.map((r) => [...r])));
    expect(pca2([[1, 2], [1, 2]])).toEqual({ points: [[0, 0], [0, 0]], explained: [0, 0] });
    expect(pca2([[1, 2, 3]]).points).toEqual([[0, 0]]);
    expect(pca2([])).toEqual({ points: [], explained: [0, 0] });
  });

  it('projects collinear points on the first axis only', () => {
    const { points, explained } = pca2([[0, 0], [1, 1], [2, 2], [3, 3]]);
    expect(explained[0]).toBeCloseTo(1, 9);
    expect(points.map((p) => Math.abs(p[1]))).toEqual([0, 0, 0, 0].map(() => expect.closeTo(0, 9)));
    expect(points.map((p) => p[0])).toEqual([-1.5, -0.5, 0.5, 1.5].map((x) => expect.closeTo(x * Math.SQRT2, 9)));
  });
});
