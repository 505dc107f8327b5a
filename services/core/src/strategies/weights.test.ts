import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FLOAT64_TOLERANCE, expectClose, expectCloseScalar } from '../test-support/expect-close.js';
import { AggregationError } from './aggregation-error.js';
import { clientWeights } from './weights.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0xfed1;

describe('clientWeights (module W)', () => {
  it('weights by sample count when W is on, uniformly when off (hand-worked)', () => {
    expectClose(clientWeights([1, 3], true), [0.25, 0.75], FLOAT64_TOLERANCE);
    expectClose(clientWeights([1, 3], false), [0.5, 0.5], FLOAT64_TOLERANCE);
    expectClose(clientWeights([10, 30, 60], true), [0.1, 0.3, 0.6], FLOAT64_TOLERANCE);
    expectClose(clientWeights([7], true), [1], FLOAT64_TOLERANCE);
  });

  it('gives weights that are positive and sum to 1 (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: 1_000_000 }), { minLength: 1, maxLength: 50 }), fc.boolean(), (samples, weighted) => {
        const weights = clientWeights(samples, weighted);
        expect(weights.length).toBe(samples.length);
        expect(weights.every((w) => w > 0)).toBe(true);
        expectCloseScalar(
          weights.reduce((a, b) => a + b, 0),
          1,
          { atol: 1e-12, rtol: 0 },
          'sum of weights',
        );
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('rejects no clients and bad counts', () => {
    expect(() => clientWeights([], true)).toThrow(AggregationError);
    for (const bad of [0, -1, NaN, Infinity]) expect(() => clientWeights([1, bad], false)).toThrow(AggregationError);
  });
});
