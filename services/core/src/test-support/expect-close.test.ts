import { describe, expect, it } from 'vitest';
import { EXACT, FLOAT32_TOLERANCE, expectClose, expectCloseScalar } from './expect-close.js';

describe('expectClose', () => {
  it('accepts values within atol + rtol * |expected|', () => {
    expectClose(new Float32Array([1, 100, 0]), [1 + 5e-5, 100.01, 9e-6], FLOAT32_TOLERANCE);
    expectCloseScalar(2, 2.00001);
  });

  it('checks lengths before values', () => {
    expect(() => expectClose([1, 2], [1, 2, 3])).toThrow(/length 2 differs from expected length 3/);
  });

  it('treats NaN as equal to NaN and infinities as equal only to themselves', () => {
    expectClose([Number.NaN, Infinity, -Infinity], [Number.NaN, Infinity, -Infinity], EXACT);
    expect(() => expectClose([Number.NaN], [0])).toThrow(/index 0 is NaN, expected 0/);
    expect(() => expectClose([Infinity], [-Infinity])).toThrow(/index 0/);
  });

  it('names the first bad index with both values', () => {
    expect(() => expectClose([0, 1, 2, 3], [0, 1, 2.5, 4], { atol: 0.1, rtol: 0 }, 'logits')).toThrow(/^logits: index 2 is 2, expected 2.5/);
  });
});
