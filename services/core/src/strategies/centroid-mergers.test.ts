import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng } from '../math/rng.js';
import { EXACT, expectClose, expectCloseScalar } from '../test-support/expect-close.js';
import { alignToReference, mergeByAlignedMean, mergeByKMeans, mergeByMaximin, poolCentroids } from './centroid-mergers.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0xcc01;

/** Recovery tolerance asked for prototypes (float32 rows of magnitude ~10). */
const RECOVERY_DISTANCE = 1e-4;

/** Four well-separated prototypes in 3-D (pairwise distances 9 to 17). */
const PROTOTYPES = [
  [1, 2, 3],
  [10, -1, 0],
  [-4, 9, 2],
  [3, -6, 11],
];
const K = 4;
const D = 3;
/** Each client holds the same prototypes, numbered differently. */
const PERMUTATIONS = [
  [0, 1, 2, 3],
  [2, 0, 3, 1],
  [3, 2, 1, 0],
];

function rowsOf(data: Float32Array, dim: number): number[][] {
  return Array.from({ length: data.length / dim }, (_, i) => Array.from(data.subarray(i * dim, i * dim + dim)));
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

/** Distance from `target` to the nearest row of `data`. */
function nearestRowDistance(data: Float32Array, dim: number, target: number[]): number {
  return Math.min(...rowsOf(data, dim).map((row) => distance(row, target)));
}

function permutedClient(permutation: number[], prototypes = PROTOTYPES): Float32Array {
  return Float32Array.from(permutation.flatMap((p) => prototypes[p]));
}

function expectRecovers(result: Float32Array, prototypes = PROTOTYPES): void {
  for (const prototype of prototypes) expect(nearestRowDistance(result, D, prototype)).toBeLessThan(RECOVERY_DISTANCE);
}

describe('poolCentroids', () => {
  it('stacks the clients in order (hand-worked)', () => {
    const pool = poolCentroids([{ centroids: new Float32Array([1, 2, 3, 4]) }, { centroids: new Float32Array([5, 6, 7, 8]) }]);
    expectClose(pool, [1, 2, 3, 4, 5, 6, 7, 8], EXACT);
  });

  it('rejects no clients and unequal sizes', () => {
    expect(() => poolCentroids([])).toThrow(ShapeError);
    expect(() => poolCentroids([{ centroids: new Float32Array(4) }, { centroids: new Float32Array(2) }])).toThrow(ShapeError);
  });
});

describe('mergeByKMeans (Eq. 10-11)', () => {
  it('recovers prototypes that clients number differently', () => {
    const pool = poolCentroids(PERMUTATIONS.map((p) => ({ centroids: permutedClient(p) })));
    const result = mergeByKMeans(pool, K, D, createRng(1));
    expectRecovers(result.centroids);
    expectCloseScalar(result.inertia, 0, { atol: 1e-6, rtol: 0 }, 'inertia');
    const sizes = new Array<number>(K).fill(0);
    for (const a of result.assignments) sizes[a]++;
    expect(sizes).toEqual([3, 3, 3, 3]);
  });

  it('is deterministic for a seed', () => {
    const rng = createRng(5);
    const pool = Float32Array.from({ length: 30 * D }, () => rng.normal());
    expectClose(mergeByKMeans(pool, K, D, createRng(9)).centroids, mergeByKMeans(pool, K, D, createRng(9)).centroids, EXACT);
  });

  it('cosine: clusters directions and returns unit centres', () => {
    // Each client holds the prototypes scaled by its own factor: the directions agree, the points do not.
    const scales = [0.5, 1, 3];
    const pool = poolCentroids(
      PERMUTATIONS.map((p, c) => ({ centroids: permutedClient(p, PROTOTYPES.map((row) => row.map((v) => v * scales[c]))) })),
    );
    const result = mergeByKMeans(pool, K, D, createRng(2), { cosine: true });
    for (const row of rowsOf(result.centroids, D)) expectCloseScalar(Math.hypot(...row), 1, { atol: 1e-6, rtol: 0 }, 'row norm');
    expectRecovers(
      result.centroids,
      PROTOTYPES.map((row) => row.map((v) => v / Math.hypot(...row))),
    );
  });

  it('rejects k larger than the pool', () => {
    expect(() => mergeByKMeans(new Float32Array(6), 3, 3, createRng(0))).toThrow(ConfigError);
  });
});

/**
 * A big spread prototype A (two halves at x = -11 and x = -9, held by six clients), a prototype B
 * (x = 10) and a small far-away prototype P = (10, 2.5) seen by one client only. With K = 3, k-means
 * prefers splitting A (saves 12) over keeping P apart (costs 8/9 * 2.5² ≈ 5.56), so it merges P into
 * B; maximin keeps P from any start, since P is 2.5 from B while A's halves are only 2 apart.
 */
function farPrototypePool(): Float32Array {
  const aLeft = [-11, 0];
  const aRight = [-9, 0];
  const b = [10, 0];
  const p = [10, 2.5];
  const clients = [...Array.from({ length: 6 }, () => [aLeft, aRight, b]), [b, b, p]];
  return Float32Array.from(clients.flat(2));
}

describe('mergeByMaximin (Eq. 12)', () => {
  it('keeps a small far-away prototype that k-means merges', () => {
    const pool = farPrototypePool();
    const lone = [10, 2.5];
    for (let seed = 0; seed < 20; seed++) {
      expect(nearestRowDistance(mergeByMaximin(pool, 3, 2, createRng(seed)), 2, lone)).toBe(0);
    }
    const kmeansResult = mergeByKMeans(pool, 3, 2, createRng(0));
    expect(nearestRowDistance(kmeansResult.centroids, 2, lone)).toBeGreaterThan(2);
    expectCloseScalar(kmeansResult.inertia, (8 / 9) * 2.5 ** 2, { atol: 1e-4, rtol: 1e-4 }, 'k-means inertia');
  });

  it('cosine: returns unit rows', () => {
    const rng = createRng(4);
    const pool = Float32Array.from({ length: 12 * D }, () => rng.normal() * 5);
    for (const row of rowsOf(mergeByMaximin(pool, K, D, createRng(1), { cosine: true }), D)) {
      expectCloseScalar(Math.hypot(...row), 1, { atol: 1e-6, rtol: 0 }, 'row norm');
    }
  });
});

describe('alignToReference', () => {
  it('matches each client row to the nearest free reference row (hand-worked)', () => {
    const reference = new Float32Array([0, 0, 10, 0, 0, 10]);
    const client = new Float32Array([0, 10.1, 0.1, 0, 10, 0.2]);
    expect(Array.from(alignToReference(client, reference, 3, 2))).toEqual([2, 0, 1]);
  });

  it('returns a permutation at least as good as the identity (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 4 }), (seed, k, dim) => {
        const rng = createRng(seed);
        const client = Float32Array.from({ length: k * dim }, () => rng.normal());
        const reference = Float32Array.from({ length: k * dim }, () => rng.normal());
        const alignment = alignToReference(client, reference, k, dim);
        expect(Array.from(alignment).sort((a, b) => a - b)).toEqual(Array.from({ length: k }, (_, i) => i));
        const row = (m: Float32Array, i: number): Float32Array => m.subarray(i * dim, i * dim + dim);
        let aligned = 0;
        let identity = 0;
        for (let i = 0; i < k; i++) {
          aligned += distance(row(client, i), row(reference, alignment[i]));
          identity += distance(row(client, i), row(reference, i));
        }
        expect(aligned).toBeLessThanOrEqual(identity + 1e-9);
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('rejects shapes that are not [k, dim]', () => {
    expect(() => alignToReference(new Float32Array(6), new Float32Array(4), 3, 2)).toThrow(ShapeError);
  });
});

describe('mergeByAlignedMean', () => {
  it('averages aligned rows with the weights (hand-worked, K = 2, D = 1)', () => {
    const reference = new Float32Array([0, 10]);
    const { centroids, alignments } = mergeByAlignedMean([new Float32Array([1, 9]), new Float32Array([11, -1])], [0.25, 0.75], reference, 2, 1);
    expectClose(centroids, [-0.5, 10.5], EXACT);
    expect(alignments.map((a) => Array.from(a))).toEqual([
      [0, 1],
      [1, 0],
    ]);
  });

  it('recovers prototypes that clients number differently, whatever the reference', () => {
    const clients = PERMUTATIONS.map((p) => permutedClient(p));
    for (let seed = 0; seed < 5; seed++) {
      const rng = createRng(seed);
      const reference = Float32Array.from({ length: K * D }, () => rng.normal());
      expectRecovers(mergeByAlignedMean(clients, [0.2, 0.3, 0.5], reference, K, D).centroids);
    }
  });
});
