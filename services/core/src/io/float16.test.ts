import { describe, expect, it } from 'vitest';
import { float16ToFloat32, float32ToFloat16, toHalfBits } from './float16.js';

describe('float16', () => {
  it('encodes known values exactly', () => {
    expect(toHalfBits(0)).toBe(0x0000);
    expect(toHalfBits(-0)).toBe(0x8000);
    expect(toHalfBits(1)).toBe(0x3c00);
    expect(toHalfBits(-2)).toBe(0xc000);
    expect(toHalfBits(65504)).toBe(0x7bff);
    expect(toHalfBits(1e6)).toBe(0x7c00);
    expect(toHalfBits(-Infinity)).toBe(0xfc00);
    expect(toHalfBits(2 ** -24)).toBe(0x0001);
    expect(toHalfBits(0.333251953125)).toBe(0x3555);
    expect(Number.isNaN(float16ToFloat32(new Uint16Array([toHalfBits(NaN)]))[0])).toBe(true);
  });

  it('rounds to nearest, ties to even', () => {
    // 1 + 2^-11 lies halfway between 1 and 1 + 2^-10: ties to the even mantissa (1).
    expect(toHalfBits(1 + 2 ** -11)).toBe(0x3c00);
    // 1 + 3 * 2^-11 lies halfway between 1 + 2^-10 (odd) and 1 + 2^-9 (even).
    expect(toHalfBits(1 + 3 * 2 ** -11)).toBe(0x3c02);
    expect(toHalfBits(1 + 2 ** -11 + 2 ** -20)).toBe(0x3c01);
    // Subnormal results: ties go to the even neighbour, including across the implicit bit.
    expect(toHalfBits(1.5 * 2 ** -24)).toBe(0x0002);
    expect(toHalfBits(2.5 * 2 ** -24)).toBe(0x0002);
    expect(toHalfBits(3.5 * 2 ** -24)).toBe(0x0004);
    expect(toHalfBits(-1.5 * 2 ** -24)).toBe(0x8002);
    // Between 2^-25 and 2^-24: rounds up to the smallest subnormal; exactly 2^-25 ties to zero.
    expect(toHalfBits(1.2 * 2 ** -25)).toBe(0x0001);
    expect(toHalfBits(2 ** -25)).toBe(0x0000);
    expect(toHalfBits(2 ** -26)).toBe(0x0000);
    // Rounding up out of the largest finite half gives Infinity.
    expect(toHalfBits(65520)).toBe(0x7c00);
    expect(toHalfBits(65519)).toBe(0x7bff);
  });

  it('round-trips every half value and keeps relative error below 2^-11 for normal floats', () => {
    const all = new Uint16Array(65536).map((_, i) => i);
    const floats = float16ToFloat32(all);
    const back = float32ToFloat16(floats);
    for (let i = 0; i < 65536; i++) {
      if (Number.isNaN(floats[i])) continue;
      expect(back[i]).toBe(i);
    }
    const values = new Float32Array(10000).map((_, i) => Math.sin(i) * 100);
    const restored = float16ToFloat32(float32ToFloat16(values));
    for (let i = 0; i < values.length; i++) {
      if (Math.abs(values[i]) < 6.2e-5) continue;
      expect(Math.abs(restored[i] - values[i]) / Math.abs(values[i])).toBeLessThanOrEqual(2 ** -11);
    }
  });
});
