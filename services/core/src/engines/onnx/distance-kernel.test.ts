// The onnxruntime k-means kernel against the exact TypeScript kernel: assignments must be identical
// (the float32 Gemm plus the float64 settling of close calls), seeding distances float32-close.

import { describe, expect, it } from 'vitest';
import { ExactDistanceKernel, squaredNormsInto } from '../../cluster/distance-kernel.js';
import { kmeans, kmeansPlusPlusInit } from '../../cluster/kmeans.js';
import { ConfigError, NonFiniteError } from '../../errors.js';
import { createRng, type Rng } from '../../math/rng.js';
import { EXACT, expectClose } from '../../test-support/expect-close.js';
import { createOnnxDistanceKernel, kmeansOnnx, scoreErrorBound } from './distance-kernel.js';

const norms = (points: Float32Array, dim: number) => squaredNormsInto(points, points.length / dim, dim, new Float64Array(points.length / dim));

/** Nearest centroids by both kernels, plus the onnxruntime kernel's count of points it settled exactly. */
async function bothNearest(points: Float32Array, dim: number, centroids: Float32Array, k: number) {
  const n = points.length / dim;
  const exact = new Int32Array(n);
  new ExactDistanceKernel(points, dim, norms(points, dim)).nearest(centroids, k, exact);
  const kernel = await createOnnxDistanceKernel(points, dim, norms(points, dim), { threads: 1 });
  try {
    const fast = new Int32Array(n);
    await kernel.nearest(centroids, k, fast);
    return { exact, fast, closeCalls: kernel.closeCalls };
  } finally {
    await kernel.dispose();
  }
}

function gaussian(count: number, dim: number, rng: Rng, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: count * dim }, () => offset + scale * rng.normal());
}

describe('onnxruntime distance kernel: nearest', () => {
  it('assigns random points exactly as the float64 kernel', async () => {
    const rng = createRng(1);
    for (const [n, dim, k] of [[500, 32, 11], [300, 768, 5], [64, 3, 2], [7, 5, 16]]) {
      const points = gaussian(n, dim, rng);
      const { exact, fast } = await bothNearest(points, dim, gaussian(k, dim, rng), k);
      expectClose(fast, exact, EXACT, `n ${n} dim ${dim} k ${k}`);
    }
  });

  it('settles exact ties, near ties and duplicated centroids like the float64 kernel', async () => {
    const dim = 8;
    const rng = createRng(2);
    // Centroids 0 and 1 are mirror images in coordinate 0, centroid 2 duplicates centroid 1.
    const centroids = new Float32Array(3 * dim);
    centroids[0] = 1;
    centroids[dim] = -1;
    centroids[2 * dim] = -1;
    const n = 200;
    const points = new Float32Array(n * dim);
    for (let i = 0; i < n; i++) {
      // Coordinate 0: exactly 0 (a tie), or within a few float32 ulps of it on either side.
      points[i * dim] = i % 3 === 0 ? 0 : (i % 3 === 1 ? 1 : -1) * (i % 7) * 1e-9;
      for (let j = 1; j < dim; j++) points[i * dim + j] = rng.normal();
    }
    const { exact, fast, closeCalls } = await bothNearest(points, dim, centroids, 3);
    expectClose(fast, exact, EXACT, 'assignments');
    expect(closeCalls).toBeGreaterThan(n / 2); // the float32 scores could decide none of the ties
    expect(Array.from(fast).every((c) => c !== 2)).toBe(true); // a duplicate never beats the first copy
    // The same ties with a third centroid far away (settled between the two best), and with k = 2.
    const far = centroids.slice();
    far.fill(0, 2 * dim, 3 * dim);
    far[2 * dim + 1] = 50;
    const withFar = await bothNearest(points, dim, far, 3);
    expectClose(withFar.fast, withFar.exact, EXACT, 'assignments, third centroid far');
    expect(withFar.closeCalls).toBeGreaterThan(n / 2);
    const two = await bothNearest(points, dim, centroids.subarray(0, 2 * dim), 2);
    expectClose(two.fast, two.exact, EXACT, 'assignments, k = 2');
  });

  it('stays exact where float32 cannot resolve the distances (points far from the origin)', async () => {
    const rng = createRng(3);
    const dim = 16;
    // Spread 1e-3 around 1000: float32 scores carry errors of ~1e-1, far above the score gaps.
    const points = gaussian(300, dim, rng, 1e-3, 1000);
    for (const k of [2, 3, 4]) {
      const { exact, fast, closeCalls } = await bothNearest(points, dim, gaussian(k, dim, rng, 1e-3, 1000), k);
      expectClose(fast, exact, EXACT, `assignments, k = ${k}`);
      expect(closeCalls).toBeGreaterThan(0);
    }
  });

  it('runs values beyond float32 range exactly instead of overflowing', async () => {
    const rng = createRng(4);
    const points = gaussian(50, 4, rng, 1e19);
    const { exact, fast } = await bothNearest(points, 4, gaussian(3, 4, rng, 1e19), 3);
    expectClose(fast, exact, EXACT, 'assignments');
  });

  it('reads points from a view into a larger buffer', async () => {
    const rng = createRng(5);
    const backing = gaussian(120, 6, rng);
    const points = backing.subarray(6 * 10, 6 * 110); // 100 points starting at row 10
    const { exact, fast } = await bothNearest(points, 6, gaussian(5, 6, rng), 5);
    expectClose(fast, exact, EXACT, 'assignments');
  });
});

describe('onnxruntime distance kernel: squaredDistances', () => {
  it('is float32-close to the exact distances and 0 to a copy, for more rows than one product takes', async () => {
    const rng = createRng(6);
    const dim = 24;
    const n = 150;
    const points = gaussian(n, dim, rng);
    const count = 19; // two Gemm batches of 16
    const rows = gaussian(count, dim, rng);
    rows.set(points.subarray(5 * dim, 6 * dim), 3 * dim); // row 3 is point 5
    const exact = new Float64Array(count * n);
    new ExactDistanceKernel(points, dim, norms(points, dim)).squaredDistances(rows, count, exact);
    const kernel = await createOnnxDistanceKernel(points, dim, norms(points, dim), { threads: 1 });
    const fast = new Float64Array(count * n);
    await kernel.squaredDistances(rows, count, fast);
    await kernel.dispose();
    expect(fast[3 * n + 5]).toBe(0);
    const pointNorms = norms(points, dim);
    const rowNorms = norms(rows, dim);
    for (let o = 0; o < count * n; o++) {
      const bound = scoreErrorBound(dim, Math.sqrt(pointNorms[o % n]), Math.sqrt(rowNorms[Math.floor(o / n)]));
      expect(Math.abs(fast[o] - exact[o])).toBeLessThanOrEqual(bound);
    }
  });
});

describe('kmeansOnnx', () => {
  it('follows exactly the trajectory of kmeans from the same initial centres', async () => {
    const rng = createRng(7);
    const dim = 20;
    const centres = gaussian(6, dim, rng, 3);
    const points = Float32Array.from({ length: 2000 * dim }, (_, j) => centres[(Math.floor(j / dim) % 6) * dim + (j % dim)] + rng.normal());
    const init = kmeansPlusPlusInit(points, dim, 6, createRng(8));
    const options = { k: 6, rng: createRng(0), init, tolerance: 0 };
    const reference = kmeans(points, dim, options);
    const fast = await kmeansOnnx(points, dim, { ...options, threads: 1 });
    expectClose(fast.centroids, reference.centroids, EXACT, 'centroids');
    expectClose(fast.assignments, reference.assignments, EXACT, 'assignments');
    expect(fast.inertia).toBe(reference.inertia);
    expect(fast.iterations).toBe(reference.iterations);
  });

  it('is deterministic for a seed, whatever the thread count, and matches kmeans in quality', async () => {
    const rng = createRng(9);
    const dim = 10;
    const points = gaussian(600, dim, rng);
    const a = await kmeansOnnx(points, dim, { k: 5, rng: createRng(10), threads: 1 });
    const b = await kmeansOnnx(points, dim, { k: 5, rng: createRng(10), threads: 2 });
    expectClose(a.centroids, b.centroids, EXACT, 'centroids');
    expect(a.inertia).toBe(b.inertia);
    const reference = kmeans(points, dim, { k: 5, rng: createRng(10) });
    expect(a.inertia).toBeLessThanOrEqual(reference.inertia * 1.05);
  });

  it('never seeds a copy of a chosen point while other points are at a distance', async () => {
    // Nine copies of the origin and one far point: the second seed must be the far point.
    const points = new Float32Array(20);
    points[18] = 3;
    points[19] = 4;
    for (let seed = 0; seed < 10; seed++) {
      const result = await kmeansOnnx(points, 2, { k: 2, rng: createRng(seed), restarts: 1, maxIterations: 0 });
      const rows = [Array.from(result.centroids.subarray(0, 2)), Array.from(result.centroids.subarray(2, 4))];
      expect(rows).toContainEqual([3, 4]);
      expect(rows).toContainEqual([0, 0]);
    }
  });

  it('handles k = 1, k = n and fewer distinct points than k', async () => {
    const points = new Float32Array([1, 1, 1, 1, 1, 7, 7]);
    const one = await kmeansOnnx(points, 1, { k: 1, rng: createRng(0) });
    expectClose(one.centroids, [19 / 7], { atol: 1e-6, rtol: 0 });
    const all = await kmeansOnnx(points, 1, { k: 7, rng: createRng(1) });
    expect(all.inertia).toBe(0);
    const three = await kmeansOnnx(points, 1, { k: 3, rng: createRng(2) });
    expect(three.inertia).toBe(0);
    expect(Array.from(three.centroids).every((c) => c === 1 || c === 7)).toBe(true);
  });

  it('refuses k > n, NaN and Infinity like kmeans', async () => {
    const rng = createRng(0);
    await expect(kmeansOnnx(new Float32Array(6), 3, { k: 3, rng })).rejects.toThrow(ConfigError);
    await expect(kmeansOnnx(new Float32Array([0, Number.NaN, 1, 2]), 2, { k: 1, rng })).rejects.toThrow(NonFiniteError);
    await expect(kmeansOnnx(new Float32Array([0, Infinity, 1, 2]), 2, { k: 1, rng })).rejects.toThrow(NonFiniteError);
  });
});
