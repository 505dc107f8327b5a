// Numeric comparison for tests with a declared tolerance (STYLE 6): lengths first, NaN equal to NaN,
// and the first bad index named with both values.

/** Absolute and relative tolerance: `|actual - expected| <= atol + rtol * |expected|`. */
export interface Tolerance {
  readonly atol: number;
  readonly rtol: number;
}

/** For values computed in float32 (typed-array kernels, Float32Array outputs). */
export const FLOAT32_TOLERANCE: Tolerance = { atol: 1e-5, rtol: 1e-4 };

/** For values computed end to end in float64 (metrics, Hungarian costs): only rounding differs. */
export const FLOAT64_TOLERANCE: Tolerance = { atol: 1e-10, rtol: 1e-10 };

/** Bitwise-equal numbers only (NaN still equals NaN). */
export const EXACT: Tolerance = { atol: 0, rtol: 0 };

/**
 * Throws unless `actual` and `expected` have the same length and every pair of values is within
 * `atol + rtol * |expected|`. NaN matches NaN; an infinity matches only the same infinity.
 *
 * @param actual - values under test, any array-like of numbers (typed arrays included)
 * @param expected - reference values, same length
 * @param tolerance - defaults to {@link FLOAT32_TOLERANCE}
 * @param what - optional label put in front of the failure message
 */
export function expectClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: Tolerance = FLOAT32_TOLERANCE,
  what = 'values',
): void {
  if (actual.length !== expected.length) {
    throw new Error(`${what}: length ${actual.length} differs from expected length ${expected.length}`);
  }
  const { atol, rtol } = tolerance;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (Number.isNaN(a) && Number.isNaN(e)) continue;
    if (a === e) continue; // also covers equal infinities
    const diff = Math.abs(a - e);
    // A non-finite value equals only itself (handled above); without this check an infinite
    // expected value would make the tolerance infinite.
    if (!Number.isFinite(a) || !Number.isFinite(e) || !(diff <= atol + rtol * Math.abs(e))) {
      throw new Error(
        `${what}: index ${i} is ${a}, expected ${e} (|diff| ${diff} > atol ${atol} + rtol ${rtol} * |expected|)`,
      );
    }
  }
}

/** {@link expectClose} for a single number. */
export function expectCloseScalar(actual: number, expected: number, tolerance: Tolerance = FLOAT32_TOLERANCE, what = 'value'): void {
  expectClose([actual], [expected], tolerance, what);
}
