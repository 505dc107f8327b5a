import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { ShapeError } from '../errors.js';
import { assignPixels } from '../evaluation/evaluate.js';
import { createRng, shuffled, type Rng } from '../math/rng.js';
import { normalizeRows } from '../math/vectors.js';
import { accumulateConfusion, createConfusion, unsupervisedMetrics } from '../metrics/segmentation-metrics.js';
import { EXACT, expectClose } from '../test-support/expect-close.js';
import { createStrategy } from './index.js';
import { keepCentroidIds } from './stable-ids.js';
import { kmeansCentroidMerger } from './fedcc-kmeans.js';
import { headParamLength, type ClientUpdate } from './update.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x51d5;

const K = 11;
const D = 70;
const C = 6;

function randomMatrix(rows: number, dim: number, rng: Rng, scale = 1): Float32Array {
  return Float32Array.from({ length: rows * dim }, () => rng.normal() * scale);
}

function rows(matrix: Float32Array, dim: number): Float32Array[] {
  return Array.from({ length: matrix.length / dim }, (_, i) => matrix.slice(i * dim, i * dim + dim));
}

function permuteRows(matrix: Float32Array, dim: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(matrix.length);
  order.forEach((from, to) => out.set(matrix.subarray(from * dim, from * dim + dim), to * dim));
  return out;
}

/** For each id of `next`, whether its nearest `previous` centroid by cosine has the same id. */
function idsKept(next: Float32Array, previous: Float32Array, k: number, dim: number): number {
  const a = normalizeRows(next, k, dim);
  const b = normalizeRows(previous, k, dim);
  let kept = 0;
  for (let i = 0; i < k; i++) {
    let best = -1;
    let bestCos = -Infinity;
    for (let j = 0; j < k; j++) {
      let dot = 0;
      for (let c = 0; c < dim; c++) dot += a[i * dim + c] * b[j * dim + c];
      if (dot > bestCos) [best, bestCos] = [j, dot];
    }
    if (best === i) kept++;
  }
  return kept;
}

function zeroHead(): HeadParams {
  const head = {} as HeadParams;
  for (const name of HEAD_PARAM_NAMES) head[name] = new Float32Array(headParamLength(name, C, D));
  return head;
}

describe('keepCentroidIds', () => {
  it('puts a shuffled copy of the previous centroids back in their order and reports the permutation', () => {
    const rng = createRng(3);
    const previous = randomMatrix(K, D, rng);
    const order = shuffled([...Array(K).keys()], rng);
    const merged = permuteRows(previous, D, order); // merged row r is previous row order[r]
    const { centroids, permutation } = keepCentroidIds(merged, previous, K, D);
    expectClose(centroids, previous, EXACT, 'centroids');
    for (let id = 0; id < K; id++) expect(order[permutation[id]]).toBe(id);
  });

  it('is a permutation of the merged rows, never worse than the merge order, and leaves its inputs alone', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), fc.integer({ min: 1, max: 9 }), fc.integer({ min: 1, max: 6 }), (seed, k, dim) => {
        const rng = createRng(seed);
        const merged = randomMatrix(k, dim, rng);
        const previous = randomMatrix(k, dim, rng);
        const before = merged.slice();
        const { centroids, permutation } = keepCentroidIds(merged, previous, k, dim);
        expect([...permutation].sort((x, y) => x - y)).toEqual([...Array(k).keys()]);
        expect(merged).toEqual(before);
        const cost = (m: Float32Array) => {
          const a = normalizeRows(m, k, dim);
          const b = normalizeRows(previous, k, dim);
          let total = 0;
          for (let i = 0; i < k; i++) for (let c = 0; c < dim; c++) total -= a[i * dim + c] * b[i * dim + c];
          return total;
        };
        expect(cost(centroids)).toBeLessThanOrEqual(cost(merged) + 1e-9);
        rows(centroids, dim).forEach((row, id) => expect(row).toEqual(merged.slice(permutation[id] * dim, permutation[id] * dim + dim)));
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('never changes mIoU: relabelling clusters permutes the confusion rows, which the Hungarian match undoes', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), (seed) => {
        const rng = createRng(seed);
        const k = 5;
        const dim = 4;
        const classes = 4;
        const codes = { channels: dim, height: 12, width: 14, data: randomMatrix(dim, 168, rng) };
        const merged = randomMatrix(k, dim, rng);
        const { centroids } = keepCentroidIds(merged, randomMatrix(k, dim, rng), k, dim);
        const predict = (m: Float32Array) => assignPixels(codes, normalizeRows(m, k, dim), k, 56, 48);
        // Labels follow the clusters 70% of the time, so the best cluster-class matching is unique
        // (with ties the Hungarian algorithm may pick another matching of the same pixel total).
        const classOf = shuffled([0, 1, 2, 3, 4], rng).map((c) => Math.min(c, classes - 1));
        const labels = Uint8Array.from(predict(merged), (cluster) => (rng.next() < 0.7 ? classOf[cluster] : rng.int(classes + 1))); // 4 = ignore
        const mIoU = (m: Float32Array) => {
          const confusion = createConfusion(k, classes);
          accumulateConfusion(confusion, k, classes, predict(m), labels, classes);
          return unsupervisedMetrics(confusion, k, classes).mIoU;
        };
        expect(mIoU(centroids)).toBeCloseTo(mIoU(merged), 9);
      }),
      { seed: FC_SEED, numRuns: 100 },
    );
  });

  it('refuses matrices of the wrong shape', () => {
    expect(() => keepCentroidIds(new Float32Array(6), new Float32Array(8), 2, 4)).toThrow(ShapeError);
  });
});

describe('stable ids over consecutive versions (every strategy goes through composeStrategy)', () => {
  /**
   * Rounds of a federation in miniature: each of 3 clients starts from the global centroids, drifts a
   * little and numbers its clusters its own way (rows shuffled); the strategy merges.
   */
  function federate(strategyName: string, rounds: number, seed: number) {
    const rng = createRng(seed);
    const strategy = createStrategy(strategyName);
    const head = zeroHead();
    let global = randomMatrix(K, D, rng);
    const versions = [global];
    const permutations: number[][] = [];
    for (let round = 1; round <= rounds; round++) {
      // Drift of 15% of the centroids' RMS value (cosine variants return unit rows).
      const scale = Math.sqrt(global.reduce((s, v) => s + v * v, 0) / global.length);
      const updates: ClientUpdate[] = [0, 1, 2].map((i) => {
        const drifted = Float32Array.from(global, (v) => v + rng.normal() * 0.15 * scale);
        return { clientId: `client-${i}`, head, centroids: permuteRows(drifted, D, shuffled([...Array(K).keys()], rng)), samples: 10 + i, backboneSha256: 'sha', featureKey: 'key' };
      });
      const result = strategy.aggregate(updates, {
        k: K, codeDim: D, channels: C, seed: seed * 100 + round, modules: { head: true, centroids: true, weighted: true },
        previous: { head, centroids: global }, backboneSha256: 'sha', featureKey: 'key',
      });
      permutations.push(result.details.permutation as number[]);
      global = result.centroids;
      versions.push(global);
    }
    return { versions, permutations };
  }

  for (const name of ['fedcc-kmeans', 'fedcc-maximin', 'fedcc-kmeans-cosine', 'fedcc-maximin-cosine']) {
    it(`${name}: every version keeps at least 10 of 11 ids as the nearest centroid of the one before (cosine)`, () => {
      const { versions, permutations } = federate(name, 5, 11);
      for (let v = 1; v < versions.length; v++) expect(idsKept(versions[v], versions[v - 1], K, D), `version ${v}`).toBeGreaterThanOrEqual(10);
      for (const permutation of permutations) expect([...permutation].sort((a, b) => a - b)).toEqual([...Array(K).keys()]);
    });
  }

  it('without the reordering, the k-means merge order would move ids (what this guards against)', () => {
    const rng = createRng(11);
    const previous = randomMatrix(K, D, rng);
    const updates = [0, 1, 2].map((i) => ({
      clientId: `client-${i}`, head: zeroHead(), centroids: Float32Array.from(previous, (v) => v + rng.normal() * 0.15), samples: 10, backboneSha256: 'sha', featureKey: 'key',
    }));
    const ctx = { k: K, codeDim: D, channels: C, seed: 5, modules: { head: true, centroids: true, weighted: true }, previous: { head: zeroHead(), centroids: previous } };
    const raw = kmeansCentroidMerger()({ updates, weights: Float64Array.of(1 / 3, 1 / 3, 1 / 3), ctx, rng: createRng(5) });
    expect(idsKept(raw.centroids, previous, K, D)).toBeLessThan(10);
    expect(idsKept(createStrategy('fedcc-kmeans').aggregate(updates, ctx).centroids, previous, K, D)).toBe(K);
  });

  it('with module C off the centroids stay the previous ones and no permutation is recorded', () => {
    const rng = createRng(2);
    const previous = randomMatrix(K, D, rng);
    const updates = [0, 1].map((i) => ({ clientId: `c${i}`, head: zeroHead(), centroids: randomMatrix(K, D, rng), samples: 5, backboneSha256: 'sha', featureKey: 'key' }));
    const result = createStrategy('fedcc-kmeans').aggregate(updates, {
      k: K, codeDim: D, channels: C, seed: 1, modules: { head: true, centroids: false, weighted: true }, previous: { head: zeroHead(), centroids: previous },
    });
    expectClose(result.centroids, previous, EXACT, 'centroids');
    expect(result.details.permutation).toBeUndefined();
  });
});
