// IEEE 754 half-precision conversion (Node 20 has no Float16Array). Round-to-nearest-even on the way
// down, exact on the way up; table-driven so a 1 M-value map converts in a few milliseconds.

const float32View = new Float32Array(1);
const uint32View = new Uint32Array(float32View.buffer);

// Tables of Jeroen van der Zijp, "Fast Half Float Conversions" (2008), with rounding added.
const baseTable = new Uint16Array(512);
const shiftTable = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const e = i - 127;
  if (e < -24) {
    baseTable[i] = 0x0000;
    baseTable[i | 0x100] = 0x8000;
    shiftTable[i] = shiftTable[i | 0x100] = 24;
  } else if (e < -14) {
    baseTable[i] = 0x0400 >> (-e - 14);
    baseTable[i | 0x100] = (0x0400 >> (-e - 14)) | 0x8000;
    shiftTable[i] = shiftTable[i | 0x100] = -e - 1;
  } else if (e <= 15) {
    baseTable[i] = (e + 15) << 10;
    baseTable[i | 0x100] = ((e + 15) << 10) | 0x8000;
    shiftTable[i] = shiftTable[i | 0x100] = 13;
  } else if (e < 128) {
    baseTable[i] = 0x7c00;
    baseTable[i | 0x100] = 0xfc00;
    shiftTable[i] = shiftTable[i | 0x100] = 24;
  } else {
    baseTable[i] = 0x7c00;
    baseTable[i | 0x100] = 0xfc00;
    shiftTable[i] = shiftTable[i | 0x100] = 13;
  }
}

/** Converts one float to half bits (round to nearest even; overflow to +-Infinity; NaN kept). */
export function toHalfBits(value: number): number {
  float32View[0] = value;
  const f = uint32View[0];
  const e = (f >>> 23) & 0x1ff;
  const exponent = e & 0xff;
  if (exponent === 0xff && (f & 0x007fffff) !== 0) return ((f >>> 16) & 0x8000) | 0x7e00; // NaN
  const shift = shiftTable[e];
  let half = baseTable[e] + ((f & 0x007fffff) >>> shift);
  // Round to nearest even using the bits shifted out (normal and subnormal results only).
  if (shift < 24) {
    const mantissa = (f & 0x007fffff) | (exponent === 0 ? 0 : 0x00800000);
    const roundBit = 1 << (shift - 1);
    const rest = (shift === 13 ? f & 0x007fffff : mantissa) & ((roundBit << 1) - 1);
    if (rest > roundBit || (rest === roundBit && (half & 1) === 1)) half += 1;
  }
  return half;
}

/** float32 value of every half bit pattern (index = bits). */
export const halfToFloatTable = new Float32Array(65536);
for (let h = 0; h < 65536; h++) {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  let value: number;
  if (exponent === 0) value = mantissa * 2 ** -24;
  else if (exponent === 31) value = mantissa === 0 ? Infinity : NaN;
  else value = (1 + mantissa / 1024) * 2 ** (exponent - 15);
  halfToFloatTable[h] = sign * value;
}

/** float32 -> half bits, element-wise. */
export function float32ToFloat16(values: Float32Array): Uint16Array {
  const out = new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) out[i] = toHalfBits(values[i]);
  return out;
}

/** half bits -> float32, element-wise (exact). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloatTable[bits[i]];
  return out;
}
