import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng, shuffled, type Rng } from '../math/rng.js';
import { EXACT, expectClose, expectCloseScalar } from '../test-support/expect-close.js';
import { AggregationError } from './aggregation-error.js';
import { STRATEGIES, STRATEGY_NAMES, createStrategy, isStrategyName } from './index.js';
import type { AggregationContext, AggregationModules, AggregationResult } from './strategy.js';
import { headParamLength, type ClientUpdate } from './update.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x5717;

const ALL: AggregationModules = { head: true, centroids: true, weighted: true };

interface Shape {
  channels: number;
  codeDim: number;
  k: number;
}

function randomHead({ channels, codeDim }: Shape, rng: Rng): HeadParams {
  const head = {} as HeadParams;
  for (const name of HEAD_PARAM_NAMES) head[name] = Float32Array.from({ length: headParamLength(name, channels, codeDim) }, () => rng.normal());
  return head;
}

function constantHead({ channels, codeDim }: Shape, value: number): HeadParams {
  const head = {} as HeadParams;
  for (const name of HEAD_PARAM_NAMES) head[name] = new Float32Array(headParamLength(name, channels, codeDim)).fill(value);
  return head;
}

function update(clientId: string, head: HeadParams, centroids: Float32Array, samples: number): ClientUpdate {
  return { clientId, head, centroids, samples, backboneSha256: 'sha', featureKey: 'key' };
}

function context(shape: Shape, modules: AggregationModules, previous: AggregationContext['previous'], seed = 7): AggregationContext {
  return { ...shape, seed, modules, previous, backboneSha256: 'sha', featureKey: 'key' };
}

/** A random round: `n` clients with random heads, centroids and sample counts, and a random previous model. */
function randomRound(seed: number, n: number, shape: Shape): { updates: ClientUpdate[]; previous: AggregationContext['previous'] } {
  const rng = createRng(seed);
  const updates = Array.from({ length: n }, (_, i) =>
    update(`client-${i}`, randomHead(shape, rng), Float32Array.from({ length: shape.k * shape.codeDim }, () => rng.normal() * 3), 1 + rng.int(100)),
  );
  return { updates, previous: { head: randomHead(shape, rng), centroids: Float32Array.from({ length: shape.k * shape.codeDim }, () => rng.normal()) } };
}

function expectSameModel(actual: AggregationResult, expected: { head: HeadParams; centroids: Float32Array }): void {
  for (const name of HEAD_PARAM_NAMES) expectClose(actual.head[name], expected.head[name], EXACT, `head.${name}`);
  expectClose(actual.centroids, expected.centroids, EXACT, 'centroids');
}

function permuteRows(data: Float32Array, dim: number, order: readonly number[]): Float32Array {
  const out = new Float32Array(data.length);
  order.forEach((from, to) => out.set(data.subarray(from * dim, from * dim + dim), to * dim));
  return out;
}

function rowsOf(data: Float32Array, dim: number): number[][] {
  return Array.from({ length: data.length / dim }, (_, i) => Array.from(data.subarray(i * dim, i * dim + dim)));
}

function distance(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += (a[i] - b[i]) ** 2;
  return Math.sqrt(s);
}

function pairwiseDistances(rows: number[][]): number[] {
  const out: number[] = [];
  for (let i = 0; i < rows.length; i++) for (let j = i + 1; j < rows.length; j++) out.push(distance(rows[i], rows[j]));
  return out;
}

describe('registry', () => {
  it('registers every strategy under its own name', () => {
    expect(STRATEGY_NAMES).toEqual(['fedavg', 'fedcc-kmeans', 'fedcc-maximin', 'fedcc-kmeans-cosine', 'fedcc-maximin-cosine', 'aligned-fedavg']);
    for (const name of STRATEGY_NAMES) {
      const strategy = createStrategy(name);
      expect(strategy.name).toBe(name);
      expect(strategy.description.length).toBeGreaterThan(0);
      expect(isStrategyName(name)).toBe(true);
    }
    expect(Object.keys(STRATEGIES)).toEqual(STRATEGY_NAMES);
  });

  it('rejects an unknown name with a ConfigError listing the names', () => {
    expect(() => createStrategy('fedprox')).toThrow(ConfigError);
    expect(() => createStrategy('fedprox')).toThrow(/choose one of fedavg, fedcc-kmeans, .*aligned-fedavg/);
    expect(isStrategyName('toString')).toBe(false);
  });
});

describe('every strategy', () => {
  it.each(STRATEGY_NAMES)('%s ignores the order updates arrive in (property)', (name) => {
    const strategy = createStrategy(name);
    fc.assert(
      fc.property(
        fc.integer(),
        fc.integer({ min: 1, max: 5 }),
        fc.record({ channels: fc.integer({ min: 1, max: 3 }), codeDim: fc.integer({ min: 1, max: 4 }), k: fc.integer({ min: 1, max: 4 }) }),
        fc.boolean(),
        (seed, n, shape, weighted) => {
          const { updates, previous } = randomRound(seed, n, shape);
          const ctx = context(shape, { ...ALL, weighted }, previous, seed);
          const reference = strategy.aggregate(updates, ctx);
          const result = strategy.aggregate(shuffled(updates, createRng(seed ^ 0x55)), ctx);
          // Updates are aggregated in client id order, so the results agree bit for bit.
          expectSameModel(result, reference);
          expect(result.details).toEqual(reference.details);
        },
      ),
      { seed: FC_SEED, numRuns: 60 },
    );
  });

  it.each(STRATEGY_NAMES)('%s is deterministic for a seed and leaves its inputs alone', (name) => {
    const shape = { channels: 2, codeDim: 3, k: 3 };
    const { updates, previous } = randomRound(11, 4, shape);
    const before = JSON.stringify(updates.map((u) => [u.clientId, Array.from(u.centroids), Array.from(u.head.l2Weight)]));
    const ctx = context(shape, ALL, previous);
    const a = createStrategy(name).aggregate(updates, ctx);
    const b = createStrategy(name).aggregate(updates, ctx);
    expectSameModel(a, b);
    expect(JSON.stringify(updates.map((u) => [u.clientId, Array.from(u.centroids), Array.from(u.head.l2Weight)]))).toBe(before);
    const buffers = updates.flatMap((u) => [u.centroids.buffer, ...HEAD_PARAM_NAMES.map((n) => u.head[n].buffer)]);
    buffers.push(previous.centroids.buffer, ...HEAD_PARAM_NAMES.map((n) => previous.head[n].buffer));
    for (const out of [a.centroids, ...HEAD_PARAM_NAMES.map((n) => a.head[n])]) expect(buffers).not.toContain(out.buffer);
  });

  it.each(STRATEGY_NAMES)('%s aggregates the head by FedAvg (Eq. 8)', (name) => {
    const shape = { channels: 1, codeDim: 2, k: 2 };
    const updates = [
      update('a', constantHead(shape, 1), new Float32Array([0, 0, 5, 5]), 1),
      update('b', constantHead(shape, 5), new Float32Array([0, 0, 5, 5]), 3),
    ];
    const result = createStrategy(name).aggregate(updates, context(shape, ALL, { head: constantHead(shape, 0), centroids: new Float32Array(4) }));
    const expected = constantHead(shape, 4); // (0.25 * 1 + 0.75 * 5)
    for (const param of HEAD_PARAM_NAMES) expectClose(result.head[param], expected[param], EXACT, `head.${param}`);
    expect(result.clientHeadsKept).toBe(false);
    expect(result.clientCentroidsKept).toBe(false);
  });

  it.each(STRATEGY_NAMES)('%s keeps the previous head when module E is off and the previous centroids when C is off', (name) => {
    const shape = { channels: 2, codeDim: 2, k: 2 };
    const { updates, previous } = randomRound(3, 3, shape);
    const strategy = createStrategy(name);
    const full = strategy.aggregate(updates, context(shape, ALL, previous));

    const cOnly = strategy.aggregate(updates, context(shape, { ...ALL, head: false }, previous));
    expectSameModel(cOnly, { head: previous.head, centroids: full.centroids });
    expect(cOnly.head.l1Weight).not.toBe(previous.head.l1Weight);
    expect([cOnly.clientHeadsKept, cOnly.clientCentroidsKept]).toEqual([true, false]);

    const eOnly = strategy.aggregate(updates, context(shape, { ...ALL, centroids: false }, previous));
    expectSameModel(eOnly, { head: full.head, centroids: previous.centroids });
    expect(eOnly.centroids).not.toBe(previous.centroids);
    expect([eOnly.clientHeadsKept, eOnly.clientCentroidsKept]).toEqual([false, true]);

    const none = strategy.aggregate(updates, context(shape, { head: false, centroids: false, weighted: true }, previous));
    expectSameModel(none, previous);
  });

  it.each(STRATEGY_NAMES)('%s validates updates against the context', (name) => {
    const shape = { channels: 1, codeDim: 2, k: 2 };
    const strategy = createStrategy(name);
    const { updates, previous } = randomRound(5, 2, shape);
    const ctx = context(shape, ALL, previous);
    expect(() => strategy.aggregate([], ctx)).toThrow(AggregationError);
    const foreign = { ...updates[1], backboneSha256: 'other' };
    expect(() => strategy.aggregate([updates[0], foreign], ctx)).toThrow(/client "client-1".*backbone/);
    // Without a backbone in the context, updates must agree with each other.
    const { backboneSha256: _b, featureKey: _f, ...bare } = ctx;
    expect(() => strategy.aggregate([updates[0], foreign], bare)).toThrow(AggregationError);
    expect(() => strategy.aggregate(updates, bare)).not.toThrow();
    expect(() => strategy.aggregate([updates[0], { ...updates[1], clientId: 'client-0' }], ctx)).toThrow(/client "client-0".*more than one update/);
    expect(() => strategy.aggregate(updates, { ...ctx, k: 3 })).toThrow(ShapeError); // previous centroids are [2, 2]
    expect(() => strategy.aggregate(updates, { ...ctx, previous: { ...previous, centroids: new Float32Array(6) } })).toThrow(ShapeError);
    expect(() => strategy.aggregate(updates, { ...ctx, modules: {} as AggregationModules })).toThrow(ConfigError);
  });
});

describe('fedavg (Eq. 8-9)', () => {
  const fedavg = createStrategy('fedavg');

  it('returns the update itself when every client sends the same one (property)', () => {
    fc.assert(
      fc.property(
        fc.integer(),
        fc.array(fc.integer({ min: 1, max: 10_000 }), { minLength: 1, maxLength: 6 }),
        fc.record({ channels: fc.integer({ min: 1, max: 4 }), codeDim: fc.integer({ min: 1, max: 5 }), k: fc.integer({ min: 1, max: 5 }) }),
        fc.boolean(),
        (seed, samples, shape, weighted) => {
          const { updates, previous } = randomRound(seed, 1, shape);
          const same = samples.map((s, i) => ({ ...updates[0], clientId: `c${i}`, samples: s }));
          const result = fedavg.aggregate(same, context(shape, { ...ALL, weighted }, previous));
          // Rows come back in the order that best matches the previous centroids (stable ids).
          expectSameModel(result, { head: updates[0].head, centroids: permuteRows(updates[0].centroids, shape.codeDim, result.details.permutation as number[]) });
        },
      ),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('weights by sample count with W on and uniformly with W off (hand-worked)', () => {
    // C = 1, D = 1, K = 2: every head tensor has one value. n = (1, 3).
    const shape = { channels: 1, codeDim: 1, k: 2 };
    const updates = [update('b', constantHead(shape, 5), new Float32Array([4, 8]), 3), update('a', constantHead(shape, 1), new Float32Array([0, 4]), 1)];
    const previous = { head: constantHead(shape, 0), centroids: new Float32Array(2) };
    const weighted = fedavg.aggregate(updates, context(shape, ALL, previous));
    expectSameModel(weighted, { head: constantHead(shape, 4), centroids: new Float32Array([3, 7]) });
    expect(weighted.details).toMatchObject({ strategy: 'fedavg', clients: ['a', 'b'], samples: [1, 3], weights: [0.25, 0.75] });
    const uniform = fedavg.aggregate(updates, context(shape, { ...ALL, weighted: false }, previous));
    expectSameModel(uniform, { head: constantHead(shape, 3), centroids: new Float32Array([2, 6]) });
    expect(uniform.details).toMatchObject({ weights: [0.5, 0.5] });
  });
});

/** Clients holding the same four well-separated prototypes (3-D), each numbering them differently. */
const PROTOTYPES = [
  [1, 2, 3],
  [10, -1, 0],
  [-4, 9, 2],
  [3, -6, 11],
];
const PROTO_SHAPE = { channels: 2, codeDim: 3, k: 4 };

function permutedPrototypeRound(permutations: number[][]): { updates: ClientUpdate[]; ctx: AggregationContext } {
  const rng = createRng(17);
  const updates = permutations.map((p, i) =>
    update(`site-${i}`, randomHead(PROTO_SHAPE, rng), Float32Array.from(p.flatMap((j) => PROTOTYPES[j])), 10 * (i + 1)),
  );
  // Round 0: the previous centroids are the random initial ones.
  const previous = { head: randomHead(PROTO_SHAPE, rng), centroids: Float32Array.from({ length: 12 }, () => rng.normal()) };
  return { updates, ctx: context(PROTO_SHAPE, ALL, previous) };
}

function expectRecovers(centroids: Float32Array): void {
  for (const prototype of PROTOTYPES) {
    const nearest = Math.min(...rowsOf(centroids, 3).map((row) => distance(row, prototype)));
    expect(nearest).toBeLessThan(1e-4);
  }
}

describe('prototypes numbered differently by clients', () => {
  const permutations = [
    [0, 1, 2, 3],
    [2, 0, 3, 1],
    [3, 2, 1, 0],
  ];

  it('fedavg blends them: pairwise distances shrink', () => {
    const { updates, ctx } = permutedPrototypeRound(permutations);
    const merged = createStrategy('fedavg').aggregate(updates, ctx).centroids;
    const before = pairwiseDistances(PROTOTYPES);
    const after = pairwiseDistances(rowsOf(merged, 3));
    expect(Math.max(...after)).toBeLessThan(Math.min(...before));
    // With every cyclic shift the rows collapse onto one point.
    const cyclic = permutedPrototypeRound([0, 1, 2, 3].map((s) => [0, 1, 2, 3].map((j) => (j + s) % 4)));
    const collapsed = createStrategy('fedavg').aggregate(cyclic.updates, { ...cyclic.ctx, modules: { ...ALL, weighted: false } }).centroids;
    expect(Math.max(...pairwiseDistances(rowsOf(collapsed, 3)))).toBeLessThan(1e-5);
  });

  it.each(['fedcc-kmeans', 'aligned-fedavg'])('%s recovers them', (name) => {
    const { updates, ctx } = permutedPrototypeRound(permutations);
    for (const weighted of [true, false]) expectRecovers(createStrategy(name).aggregate(updates, { ...ctx, modules: { ...ALL, weighted } }).centroids);
  });

  it('fedcc-maximin recovers them too (selection keeps pooled rows)', () => {
    const { updates, ctx } = permutedPrototypeRound(permutations);
    expectRecovers(createStrategy('fedcc-maximin').aggregate(updates, ctx).centroids);
  });

  it('reports merge details', () => {
    const { updates, ctx } = permutedPrototypeRound(permutations);
    expect(createStrategy('fedcc-kmeans').aggregate(updates, ctx).details).toMatchObject({ pooledRows: 12, clusterSizes: [3, 3, 3, 3] });
    expect(createStrategy('fedcc-maximin').aggregate(updates, ctx).details).toMatchObject({ pooledRows: 12 });
    const aligned = createStrategy('aligned-fedavg').aggregate(updates, { ...ctx, previous: { ...ctx.previous, centroids: Float32Array.from(PROTOTYPES.flat()) } });
    expect(aligned.details).toMatchObject({ permutedClients: ['site-1', 'site-2'] });
  });
});

describe('fedcc-maximin versus fedcc-kmeans', () => {
  it('maximin keeps a small far-away prototype that k-means merges', () => {
    // D = 2, K = 3: prototype A spread over x = -11 and x = -9 (six clients), B at (10, 0), and P at
    // (10, 2.5) held by one client only (see centroid-mergers.test.ts for the arithmetic).
    const shape = { channels: 1, codeDim: 2, k: 3 };
    const rng = createRng(2);
    const rows = [...Array.from({ length: 6 }, () => [-11, 0, -9, 0, 10, 0]), [10, 0, 10, 0, 10, 2.5]];
    const updates = rows.map((r, i) => update(`c${i}`, randomHead(shape, rng), Float32Array.from(r), 5));
    const previous = { head: randomHead(shape, rng), centroids: new Float32Array(6) };
    const nearestToP = (centroids: Float32Array): number => Math.min(...rowsOf(centroids, 2).map((row) => distance(row, [10, 2.5])));
    for (let seed = 0; seed < 5; seed++) {
      const ctx = context(shape, ALL, previous, seed);
      expect(nearestToP(createStrategy('fedcc-maximin').aggregate(updates, ctx).centroids)).toBe(0);
      expect(nearestToP(createStrategy('fedcc-kmeans').aggregate(updates, ctx).centroids)).toBeGreaterThan(2);
    }
  });
});

describe('cosine variants', () => {
  it.each(['fedcc-kmeans-cosine', 'fedcc-maximin-cosine'])('%s returns unit rows', (name) => {
    const shape = { channels: 2, codeDim: 4, k: 3 };
    for (let seed = 0; seed < 5; seed++) {
      const { updates, previous } = randomRound(seed, 4, shape);
      const { centroids } = createStrategy(name).aggregate(updates, context(shape, ALL, previous, seed));
      for (const row of rowsOf(centroids, 4)) expectCloseScalar(Math.hypot(...row), 1, { atol: 1e-6, rtol: 0 }, `${name} row norm`);
    }
  });
});
