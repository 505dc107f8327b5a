import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, NonFiniteError, ShapeError } from '../errors.js';
import { createRng, type Rng } from '../math/rng.js';
import { EXACT, FLOAT32_TOLERANCE, expectClose, expectCloseScalar } from '../test-support/expect-close.js';
import { assignNearest, kmeans, kmeansAsync, kmeansPlusPlusInit } from './kmeans.js';
import { ExactDistanceKernel } from './distance-kernel.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x6b6d;

/** `perBlob` points around each centre with N(0, sigma²) noise, blob by blob: [centres * perBlob, dim]. */
function blobs(centres: number[][], perBlob: number, sigma: number, rng: Rng): Float32Array {
  const dim = centres[0].length;
  const out = new Float32Array(centres.length * perBlob * dim);
  let o = 0;
  for (const centre of centres) {
    for (let p = 0; p < perBlob; p++) for (let j = 0; j < dim; j++) out[o++] = centre[j] + sigma * rng.normal();
  }
  return out;
}

/** Inertia recomputed directly as Σ ||x - c||² (no norm expansion). */
function directInertia(points: Float32Array, dim: number, centroids: Float32Array, assignments: Int32Array): number {
  let total = 0;
  for (let i = 0; i < assignments.length; i++) {
    for (let j = 0; j < dim; j++) {
      const d = points[i * dim + j] - centroids[assignments[i] * dim + j];
      total += d * d;
    }
  }
  return total;
}

const pointSets = fc
  .record({ n: fc.integer({ min: 1, max: 40 }), dim: fc.integer({ min: 1, max: 7 }), seed: fc.integer() })
  .chain(({ n, dim, seed }) =>
    fc.record({
      dim: fc.constant(dim),
      seed: fc.constant(seed),
      k: fc.integer({ min: 1, max: n }),
      points: fc.float32Array({ minLength: n * dim, maxLength: n * dim, noNaN: true, noDefaultInfinity: true, min: -100, max: 100 }),
    }),
  );

describe('kmeans', () => {
  it('recovers three well-separated blobs', () => {
    const centres = [
      [0, 0, 0, 0, 0],
      [10, 10, 0, 0, 0],
      [-10, 0, 10, 0, 5],
    ];
    const perBlob = 50;
    const points = blobs(centres, perBlob, 0.5, createRng(1));
    const result = kmeans(points, 5, { k: 3, rng: createRng(2) });

    const labelOfBlob = [0, 1, 2].map((b) => result.assignments[b * perBlob]);
    expect(new Set(labelOfBlob).size).toBe(3);
    for (let b = 0; b < 3; b++) {
      for (let p = 0; p < perBlob; p++) expect(result.assignments[b * perBlob + p]).toBe(labelOfBlob[b]);
      // The centroid is the blob mean, within noise: sigma / sqrt(50) ~ 0.07 per coordinate.
      const centroid = result.centroids.subarray(labelOfBlob[b] * 5, labelOfBlob[b] * 5 + 5);
      expectClose(centroid, centres[b], { atol: 0.3, rtol: 0 }, `centroid of blob ${b}`);
    }
    expectCloseScalar(result.inertia, directInertia(points, 5, result.centroids, result.assignments), { atol: 1e-6, rtol: 1e-6 });
  });

  it('puts every point on its own centroid when k = n', () => {
    const points = new Float32Array([0, 0, 1, 0, 0, 1, 5, 5]);
    const result = kmeans(points, 2, { k: 4, rng: createRng(3) });
    expect(result.inertia).toBe(0);
    expect(new Set(result.assignments).size).toBe(4);
    for (let i = 0; i < 4; i++) {
      const c = result.assignments[i];
      expectClose(result.centroids.subarray(c * 2, c * 2 + 2), points.subarray(i * 2, i * 2 + 2), EXACT);
    }
  });

  it('handles fewer distinct points than k by re-seeding empty clusters', () => {
    // Two distinct values, k = 3: k-means++ has to duplicate a centre, whose cluster starts empty.
    const points = new Float32Array([1, 1, 1, 1, 1, 7, 7]);
    for (let seed = 0; seed < 10; seed++) {
      const result = kmeans(points, 1, { k: 3, rng: createRng(seed) });
      expect(result.inertia).toBe(0);
      expect(Array.from(result.assignments).every((a) => a >= 0 && a < 3)).toBe(true);
      expect(Array.from(result.centroids).every((c) => c === 1 || c === 7)).toBe(true);
    }
  });

  it('returns k-means++ seeds untouched when maxIterations is 0', () => {
    const points = blobs([[0, 0], [4, 4]], 10, 1, createRng(4));
    const result = kmeans(points, 2, { k: 2, rng: createRng(5), restarts: 1, maxIterations: 0 });
    expect(result.iterations).toBe(0);
    // restarts use rng.fork(), so the seeds come from the first fork of the same stream
    const seeds = kmeansPlusPlusInit(points, 2, 2, createRng(5).fork());
    expectClose(result.centroids, seeds, EXACT);
  });

  it('stops at maxIterations and reports the steps it ran', () => {
    const points = blobs([[0, 0], [3, 0], [0, 3]], 30, 1.5, createRng(6));
    const capped = kmeans(points, 2, { k: 3, rng: createRng(7), maxIterations: 1, restarts: 1 });
    expect(capped.iterations).toBe(1);
    const free = kmeans(points, 2, { k: 3, rng: createRng(7), restarts: 1, tolerance: 0 });
    expect(free.iterations).toBeGreaterThanOrEqual(1);
    expect(free.iterations).toBeLessThanOrEqual(100);
    expect(free.inertia).toBeLessThanOrEqual(capped.inertia);
  });

  it('is deterministic for a seed (property)', () => {
    fc.assert(
      fc.property(pointSets, ({ points, dim, k, seed }) => {
        const a = kmeans(points, dim, { k, rng: createRng(seed) });
        const b = kmeans(points, dim, { k, rng: createRng(seed) });
        expectClose(a.centroids, b.centroids, EXACT, 'centroids');
        expectClose(a.assignments, b.assignments, EXACT, 'assignments');
        expect(a.inertia).toBe(b.inertia);
        expect(a.iterations).toBe(b.iterations);
      }),
      { seed: FC_SEED, numRuns: 100 },
    );
  });

  it('with more restarts is never worse than one run from the same seed (property)', () => {
    fc.assert(
      fc.property(pointSets, ({ points, dim, k, seed }) => {
        const one = kmeans(points, dim, { k, rng: createRng(seed), restarts: 1 });
        const many = kmeans(points, dim, { k, rng: createRng(seed), restarts: 4 });
        expect(many.inertia).toBeLessThanOrEqual(one.inertia);
      }),
      { seed: FC_SEED, numRuns: 100 },
    );
  });

  it('returns assignments consistent with its centroids and inertia (property)', () => {
    fc.assert(
      fc.property(pointSets, ({ points, dim, k, seed }) => {
        const result = kmeans(points, dim, { k, rng: createRng(seed), restarts: 2 });
        expectClose(assignNearest(points, dim, result.centroids, k), result.assignments, EXACT, 'assignments');
        // Float32 products are exact in float64; only the expanded form's cancellation against squared
        // norms up to 7e4 differs from the direct sum, at ~1e-11 per point.
        expectCloseScalar(result.inertia, directInertia(points, dim, result.centroids, result.assignments), { atol: 1e-6, rtol: 1e-9 });
        expect(result.iterations).toBeLessThanOrEqual(100);
      }),
      { seed: FC_SEED, numRuns: 100 },
    );
  });

  it('rejects bad k, options and shapes', () => {
    const points = new Float32Array(12); // 4 points x 3 dims
    const rng = createRng(0);
    expect(() => kmeans(points, 3, { k: 0, rng })).toThrow(ConfigError);
    expect(() => kmeans(points, 3, { k: 5, rng })).toThrow(/exceeds the number of points \(4\)/);
    expect(() => kmeans(points, 3, { k: 1.5, rng })).toThrow(ConfigError);
    expect(() => kmeans(points, 5, { k: 2, rng })).toThrow(ShapeError);
    expect(() => kmeans(points, 0, { k: 2, rng })).toThrow(ShapeError);
    expect(() => kmeans(points, 3, { k: 2, rng, restarts: 0 })).toThrow(ConfigError);
    expect(() => kmeans(points, 3, { k: 2, rng, maxIterations: -1 })).toThrow(ConfigError);
    expect(() => kmeans(points, 3, { k: 2, rng, tolerance: Number.NaN })).toThrow(ConfigError);
    expect(() => kmeans(new Float32Array(0), 3, { k: 1, rng })).toThrow(ConfigError);
  });

  it('refuses points holding NaN or Infinity', () => {
    const rng = createRng(0);
    expect(() => kmeans(new Float32Array([0, 1, Number.NaN, 2]), 2, { k: 1, rng })).toThrow(NonFiniteError);
    expect(() => kmeans(new Float32Array([0, 1, 2, -Infinity]), 2, { k: 2, rng })).toThrow(/point 1 holds NaN or Infinity/);
    expect(() => kmeansPlusPlusInit(new Float32Array([Number.NaN, 0]), 1, 1, rng)).toThrow(NonFiniteError);
  });

  it('starts from given centres: maxIterations 0 returns them, and they must fit', () => {
    const points = blobs([[0, 0], [4, 4]], 10, 1, createRng(11));
    const init = new Float32Array([1, 1, 3, 3]);
    const rng = createRng(12);
    const start = kmeans(points, 2, { k: 2, rng, init, maxIterations: 0 });
    expectClose(start.centroids, init, EXACT);
    expectClose(start.assignments, assignNearest(points, 2, init, 2), EXACT);
    const run = kmeans(points, 2, { k: 2, rng, init });
    expect(run.inertia).toBeLessThanOrEqual(start.inertia);
    expect(() => kmeans(points, 2, { k: 2, rng, init, restarts: 2 })).toThrow(ConfigError);
    expect(() => kmeans(points, 2, { k: 2, rng, init: new Float32Array(3) })).toThrow(ShapeError);
    expect(() => kmeans(points, 2, { k: 2, rng, init: new Float32Array([0, 0, Number.NaN, 0]) })).toThrow(NonFiniteError);
  });

  it('gives the same result through kmeansAsync with the exact kernel', async () => {
    const points = blobs([[0, 0, 0], [3, 3, 3], [0, 5, 0]], 20, 1, createRng(13));
    const reference = kmeans(points, 3, { k: 3, rng: createRng(14) });
    const viaAsync = await kmeansAsync(points, 3, { k: 3, rng: createRng(14) }, async (p, dim, norms) => new ExactDistanceKernel(p, dim, norms));
    expectClose(viaAsync.centroids, reference.centroids, EXACT);
    expect(viaAsync.inertia).toBe(reference.inertia);
  });
});

describe('kmeansPlusPlusInit', () => {
  it('picks k distinct input rows when the points are distinct', () => {
    const points = blobs([[0, 0, 0], [5, 5, 5]], 20, 1, createRng(8));
    const seeds = kmeansPlusPlusInit(points, 3, 6, createRng(9));
    const rows = new Set<string>();
    for (let c = 0; c < 6; c++) {
      const seed = Array.from(seeds.subarray(c * 3, c * 3 + 3));
      let found = false;
      for (let i = 0; i < 40 && !found; i++) found = seed.every((v, j) => v === points[i * 3 + j]);
      expect(found).toBe(true);
      rows.add(seed.join(','));
    }
    expect(rows.size).toBe(6);
  });

  it('never picks a point already chosen while others are at positive distance', () => {
    // One far point and nine copies of the origin: D² sampling must pick the far point second.
    const points = new Float32Array(20);
    points[18] = 3;
    points[19] = 4;
    for (let seed = 0; seed < 20; seed++) {
      const seeds = kmeansPlusPlusInit(points, 2, 2, createRng(seed));
      const rows = [Array.from(seeds.subarray(0, 2)), Array.from(seeds.subarray(2, 4))];
      expect(rows).toContainEqual([3, 4]);
      expect(rows).toContainEqual([0, 0]);
    }
  });
});

describe('assignNearest', () => {
  it('assigns a hand-made case, ties to the lower index', () => {
    const points = new Float32Array([0, 0, 1, 0, 4, 4, 2, 2, 0.9, 0.1]);
    const centroids = new Float32Array([0, 0, 4, 4]);
    expectClose(assignNearest(points, 2, centroids, 2), [0, 0, 1, 0, 0], EXACT);
    const tie = assignNearest(new Float32Array([1, 0]), 2, new Float32Array([0, 0, 2, 0]), 2);
    expect(tie[0]).toBe(0);
  });

  it('agrees with a brute-force nearest search (property)', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 9 }).chain((dim) =>
          fc.record({
            dim: fc.constant(dim),
            points: fc.array(fc.array(fc.integer({ min: -20, max: 20 }), { minLength: dim, maxLength: dim }), { minLength: 1, maxLength: 30 }),
            centroids: fc.array(fc.array(fc.integer({ min: -20, max: 20 }), { minLength: dim, maxLength: dim }), { minLength: 1, maxLength: 9 }),
          }),
        ),
        ({ dim, points, centroids }) => {
          // Integer coordinates keep both distance forms exact, so ties resolve identically.
          const out = new Int32Array(points.length);
          const result = assignNearest(new Float32Array(points.flat()), dim, new Float32Array(centroids.flat()), centroids.length, out);
          expect(result).toBe(out);
          const expected = points.map((p) => {
            let best = 0;
            let bestD = Infinity;
            centroids.forEach((c, ci) => {
              const d = p.reduce((s, v, j) => s + (v - c[j]) ** 2, 0);
              if (d < bestD) {
                bestD = d;
                best = ci;
              }
            });
            return best;
          });
          expectClose(result, expected, EXACT);
        },
      ),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('checks the centroid and output shapes', () => {
    expect(() => assignNearest(new Float32Array(4), 2, new Float32Array(3), 2)).toThrow(ShapeError);
    expect(() => assignNearest(new Float32Array(4), 2, new Float32Array(4), 2, new Int32Array(3))).toThrow(ShapeError);
  });
});

describe('kmeans output precision', () => {
  it('keeps float32 centroids close to the float64 mean', () => {
    const points = new Float32Array([0.1, 0.2, 0.30000001, 0.4]);
    const result = kmeans(points, 1, { k: 1, rng: createRng(0) });
    expectClose(result.centroids, [(0.1 + 0.2 + 0.30000001 + 0.4) / 4], FLOAT32_TOLERANCE);
  });
});
