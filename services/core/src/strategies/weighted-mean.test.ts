import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { ConfigError, ShapeError } from '../errors.js';
import { createRng, shuffled } from '../math/rng.js';
import { EXACT, FLOAT32_TOLERANCE, expectClose } from '../test-support/expect-close.js';
import { squaredDistance } from './robust.js';
import { WeightedSumAccumulator, weightedMean, weightedMeanHead } from './weighted-mean.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0xa77e;

/** N random arrays of length L and N random positive weights from one seed. */
function randomCase(seed: number, n: number, length: number): { arrays: Float32Array[]; weights: number[] } {
  const rng = createRng(seed);
  const arrays = Array.from({ length: n }, () => Float32Array.from({ length }, () => rng.normal() * 10));
  const weights = Array.from({ length: n }, () => 0.01 + rng.next() * 100);
  return { arrays, weights };
}

describe('weightedMean (Eq. 8-9)', () => {
  it('computes Σ w_i a_i / Σ w_i (hand-worked)', () => {
    const arrays = [new Float32Array([1, 2]), new Float32Array([3, 6])];
    expectClose(weightedMean(arrays, [0.25, 0.75]), [2.5, 5], EXACT);
    // Raw sample counts work too: they are normalised by their total.
    expectClose(weightedMean(arrays, [1, 3]), [2.5, 5], EXACT);
    expectClose(weightedMean(arrays, [1, 1]), [2, 4], EXACT);
    // A zero weight leaves a client out.
    expectClose(weightedMean(arrays, [0, 2]), [3, 6], EXACT);
  });

  it('returns a new array', () => {
    const a = new Float32Array([1, 2]);
    const mean = weightedMean([a], [1]);
    expect(mean).not.toBe(a);
    expectClose(mean, a, EXACT);
  });

  it('returns the array itself, exactly, for identical inputs (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 40 }), (seed, n, length) => {
        const { arrays, weights } = randomCase(seed, n, length);
        expectClose(weightedMean(arrays.map(() => arrays[0]), weights), arrays[0], EXACT);
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('does not depend on the order of the clients beyond float rounding (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 1, max: 40 }), (seed, n, length) => {
        const { arrays, weights } = randomCase(seed, n, length);
        const order = shuffled(
          arrays.map((_, i) => i),
          createRng(seed + 1),
        );
        expectClose(
          weightedMean(
            order.map((i) => arrays[i]),
            order.map((i) => weights[i]),
          ),
          weightedMean(arrays, weights),
          FLOAT32_TOLERANCE,
        );
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('rejects bad shapes and weights', () => {
    const a = new Float32Array(2);
    expect(() => weightedMean([], [])).toThrow(ShapeError);
    expect(() => weightedMean([a, new Float32Array(3)], [1, 1])).toThrow(ShapeError);
    expect(() => weightedMean([a, a], [1])).toThrow(ShapeError);
    expect(() => weightedMean([a, a], [1, -1])).toThrow(ConfigError);
    expect(() => weightedMean([a, a], [1, NaN])).toThrow(ConfigError);
    expect(() => weightedMean([a, a], [0, 0])).toThrow(ConfigError);
  });
});

describe('weightedMeanHead (Eq. 8)', () => {
  it('averages every head tensor (hand-worked, C = 1, D = 2)', () => {
    const head = (v: number): HeadParams => ({
      l1Weight: new Float32Array([v, 2 * v]),
      l1Bias: new Float32Array([v, -v]),
      l2Weight: new Float32Array([v]),
      l2Bias: new Float32Array([3 * v]),
      l3Weight: new Float32Array([v, v]),
      l3Bias: new Float32Array([0, v]),
    });
    const mean = weightedMeanHead([head(1), head(5)], [0.25, 0.75]);
    const expected = head(4);
    for (const name of HEAD_PARAM_NAMES) expectClose(mean[name], expected[name], EXACT, name);
  });
});

describe('WeightedSumAccumulator', () => {
  it('streams to the same result as weightedMean, bit for bit (property)', () => {
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 8 }), fc.integer({ min: 0, max: 40 }), (seed, n, length) => {
        const { arrays, weights } = randomCase(seed, n, length);
        const other = randomCase(seed + 7, n, 3).arrays;
        const accumulator = new WeightedSumAccumulator({ a: length, b: 3 });
        arrays.forEach((a, i) => accumulator.add({ a, b: other[i] }, weights[i]));
        const result = accumulator.result();
        expectClose(result.a, weightedMean(arrays, weights), EXACT, 'a');
        expectClose(result.b, weightedMean(other, weights), EXACT, 'b');
        expect(accumulator.count).toBe(n);
        expect(accumulator.totalWeight).toBe(weights.reduce((s, w) => s + w, 0));
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('forModel accumulates a head and centroids like weightedMeanHead', () => {
    const rng = createRng(3);
    const C = 2;
    const D = 3;
    const K = 2;
    const models = Array.from({ length: 3 }, () => {
      const random = (n: number): Float32Array => Float32Array.from({ length: n }, () => rng.normal());
      return {
        l1Weight: random(D * C),
        l1Bias: random(D),
        l2Weight: random(C * C),
        l2Bias: random(C),
        l3Weight: random(D * C),
        l3Bias: random(D),
        centroids: random(K * D),
      };
    });
    const weights = [2, 1, 5];
    const accumulator = WeightedSumAccumulator.forModel(C, D, K);
    models.forEach((m, i) => accumulator.add(m, weights[i]));
    const result = accumulator.result();
    const head = weightedMeanHead(models, weights);
    for (const name of HEAD_PARAM_NAMES) expectClose(result[name], head[name], EXACT, name);
    expectClose(
      result.centroids,
      weightedMean(
        models.map((m) => m.centroids),
        weights,
      ),
      EXACT,
    );
  });

  it('addWithSquaredDistance sums like add and measures like squaredDistance, bit for bit (property)', () => {
    const bits = (values: Float32Array) => Array.from(new Uint32Array(values.buffer, values.byteOffset, values.length));
    fc.assert(
      fc.property(fc.integer(), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 40 }), (seed, n, length) => {
        const { arrays, weights } = randomCase(seed, n, length);
        const other = randomCase(seed + 7, n, 3).arrays;
        const reference = { a: randomCase(seed + 11, 1, length).arrays[0], b: randomCase(seed + 13, 1, 3).arrays[0] };
        const fused = new WeightedSumAccumulator({ a: length, b: 3 });
        const plain = new WeightedSumAccumulator({ a: length, b: 3 });
        arrays.forEach((a, i) => {
          const distance = fused.addWithSquaredDistance({ a, b: other[i] }, weights[i], reference);
          plain.add({ a, b: other[i] }, weights[i]);
          let expected = 0;
          expected += squaredDistance(a, reference.a);
          expected += squaredDistance(other[i], reference.b);
          expect(Object.is(distance, expected)).toBe(true);
        });
        expect(bits(fused.result().a)).toEqual(bits(plain.result().a));
        expect(bits(fused.result().b)).toEqual(bits(plain.result().b));
        expect([fused.count, fused.totalWeight]).toEqual([plain.count, plain.totalWeight]);
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('addWithSquaredDistance refuses a wrong length of values or reference, adding nothing', () => {
    const accumulator = new WeightedSumAccumulator({ a: 2 });
    const two = new Float32Array([1, 2]);
    expect(() => accumulator.addWithSquaredDistance({ a: two }, 1, { a: new Float32Array(1) })).toThrow(ShapeError);
    expect(() => accumulator.addWithSquaredDistance({ a: new Float32Array(3) }, 1, { a: two })).toThrow(ShapeError);
    expect(() => accumulator.addWithSquaredDistance({ a: two }, -1, { a: two })).toThrow(ConfigError);
    expect(accumulator.count).toBe(0);
    expect(accumulator.addWithSquaredDistance({ a: new Float32Array([4, 6]) }, 2, { a: two })).toBe(9 + 16);
    expectClose(accumulator.result().a, [4, 6], EXACT);
  });

  it('rejects a wrong length (adding nothing), a bad weight, and an empty result', () => {
    const accumulator = new WeightedSumAccumulator({ a: 2, b: 1 });
    expect(() => accumulator.result()).toThrow(ConfigError);
    expect(() => accumulator.add({ a: new Float32Array(2), b: new Float32Array(2) }, 1)).toThrow(ShapeError);
    expect(() => accumulator.add({ a: new Float32Array(2), b: new Float32Array(1) }, -1)).toThrow(ConfigError);
    expect(accumulator.count).toBe(0);
    accumulator.add({ a: new Float32Array([1, 2]), b: new Float32Array([3]) }, 2);
    expectClose(accumulator.result().a, [1, 2], EXACT);
  });
});
