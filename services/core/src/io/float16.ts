// IEEE 754 half-precision conversion (Node 20 has no Float16Array). Round-to-nearest-even on the way
// down, exact on the way up; table-driven so a 1 M-value map converts in a few milliseconds.

const float32View = new Float32Array(1);
const uint32View = new Uint32Array(float32View.buffer);

// Per float32 sign+exponent (9 bits): the half's sign and exponent bits, how far the 24-bit mantissa
// (with its implicit bit where the half is subnormal) shifts right, and that implicit bit. After the
// tables of Jeroen van der Zijp, "Fast Half Float Conversions" (2008), with rounding added.
const RETURN_BASE = 31; // shift value meaning "the base alone is the answer" (zero or Infinity)
const baseTable = new Uint16Array(512);
const shiftTable = new Uint8Array(512);
const implicitTable = new Int32Array(512);
for (let i = 0; i < 256; i++) {
  const e = i - 127;
  let base: number;
  let shift: number;
  let implicit = 0;
  if (e < -25) {
    [base, shift] = [0x0000, RETURN_BASE]; // rounds to zero
  } else if (e < -14) {
    [base, shift, implicit] = [0x0000, -e - 1, 0x00800000]; // subnormal half: 2^e * 1.m in units of 2^-24
  } else if (e <= 15) {
    [base, shift] = [(e + 15) << 10, 13]; // normal half
  } else if (e < 128) {
    [base, shift] = [0x7c00, RETURN_BASE]; // overflow to Infinity
  } else {
    [base, shift] = [0x7c00, 13]; // Infinity (NaN is handled before the tables)
  }
  baseTable[i] = base;
  baseTable[i | 0x100] = base | 0x8000;
  shiftTable[i] = shiftTable[i | 0x100] = shift;
  implicitTable[i] = implicitTable[i | 0x100] = implicit;
}

/** Half bits of the float32 whose IEEE bits are `f` (round to nearest even; overflow to +-Infinity; NaN kept). */
function halfBitsOf(f: number): number {
  const e = (f >>> 23) & 0x1ff;
  if ((e & 0xff) === 0xff && (f & 0x007fffff) !== 0) return ((f >>> 16) & 0x8000) | 0x7e00; // NaN
  const shift = shiftTable[e];
  if (shift === RETURN_BASE) return baseTable[e];
  // Round half to even without branches: the dropped bits plus (half ulp - 1) plus the lowest kept
  // bit carry into the kept bits exactly when rounding up. A carry out of the mantissa correctly
  // bumps the exponent (up to Infinity).
  const mantissa = (f & 0x007fffff) | implicitTable[e];
  const kept = baseTable[e] + (mantissa >>> shift);
  const dropped = mantissa & ((1 << shift) - 1);
  return kept + ((dropped + (1 << (shift - 1)) - 1 + (kept & 1)) >>> shift);
}

/** Converts one float to half bits (round to nearest even; overflow to +-Infinity; NaN kept). */
export function toHalfBits(value: number): number {
  float32View[0] = value;
  return halfBitsOf(uint32View[0]);
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
  // Read the IEEE bits directly (an aligned view, or a copy when the input is unaligned). Int32, not
  // Uint32: values above 2^31 would leave V8's small-integer fast path.
  const bits = values.byteOffset % 4 === 0 ? new Int32Array(values.buffer, values.byteOffset, values.length) : new Int32Array(values.slice().buffer);
  for (let i = 0; i < bits.length; i++) out[i] = halfBitsOf(bits[i]);
  return out;
}

/** half bits -> float32, element-wise (exact). */
export function float16ToFloat32(bits: Uint16Array): Float32Array {
  const out = new Float32Array(bits.length);
  for (let i = 0; i < bits.length; i++) out[i] = halfToFloatTable[bits[i]];
  return out;
}
