import { describe, expect, it } from 'vitest';
import { meanPairwiseCosine } from './vectors.js';

describe('meanPairwiseCosine', () => {
  it('averages the cosine of every pair', () => {
    const a = Float32Array.of(1, 0, 0);
    const b = Float32Array.of(0, 2, 0);
    const c = Float32Array.of(3, 3, 0);
    // pairs: a-b 0, a-c 1/sqrt2, b-c 1/sqrt2
    expect(meanPairwiseCosine([a, b, c])).toBeCloseTo((2 / Math.SQRT2) / 3, 12);
    expect(meanPairwiseCosine([a, Float32Array.of(-5, 0, 0)])).toBe(-1);
    expect(meanPairwiseCosine([c, c])).toBeCloseTo(1, 12);
  });

  it('counts a zero vector as unrelated, needs two vectors of one length', () => {
    expect(meanPairwiseCosine([Float32Array.of(1, 1), Float32Array.of(0, 0)])).toBe(0);
    expect(meanPairwiseCosine([Float32Array.of(1, 1)])).toBeUndefined();
    expect(meanPairwiseCosine([])).toBeUndefined();
    expect(() => meanPairwiseCosine([Float32Array.of(1), Float32Array.of(1, 2)])).toThrow(/1 and 2 values/);
  });
});
