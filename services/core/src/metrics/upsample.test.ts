import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ShapeError } from '../errors.js';
import { createRng } from '../math/rng.js';
import { EXACT, expectClose } from '../test-support/expect-close.js';
import { upsampleScoresArgmax } from './upsample.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x7570;

/** Straightforward PyTorch-style bilinear upsampling (align_corners = false) of all K planes, then argmax. */
function referenceArgmax(scores: Float32Array, K: number, h: number, w: number, outH: number, outW: number): Int32Array {
  const source = (dst: number, inSize: number, outSize: number): [number, number, number] => {
    let s = ((dst + 0.5) * inSize) / outSize - 0.5;
    if (s < 0) s = 0;
    const i0 = Math.floor(s);
    const i1 = i0 < inSize - 1 ? i0 + 1 : i0;
    return [i0, i1, s - i0];
  };
  const upsampled = new Float64Array(K * outH * outW);
  for (let k = 0; k < K; k++) {
    for (let oy = 0; oy < outH; oy++) {
      const [y0, y1, ly] = source(oy, h, outH);
      for (let ox = 0; ox < outW; ox++) {
        const [x0, x1, lx] = source(ox, w, outW);
        const at = (y: number, x: number): number => scores[k * h * w + y * w + x];
        upsampled[k * outH * outW + oy * outW + ox] =
          (1 - ly) * ((1 - lx) * at(y0, x0) + lx * at(y0, x1)) + ly * ((1 - lx) * at(y1, x0) + lx * at(y1, x1));
      }
    }
  }
  const out = new Int32Array(outH * outW);
  for (let p = 0; p < outH * outW; p++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (upsampled[k * outH * outW + p] > upsampled[best * outH * outW + p]) best = k;
    out[p] = best;
  }
  return out;
}

describe('upsampleScoresArgmax', () => {
  it('matches a hand-worked 1x2 -> 1x4 case', () => {
    // Source x for outputs 0..3: -0.25 (clamped to 0), 0.25, 0.75, 1.25 (neighbour clamped).
    // Cluster 0 interpolates to 1, 0.75, 0.25, 0 and cluster 1 to 0, 0.25, 0.75, 1.
    const scores = new Float32Array([1, 0, 0, 1]); // [K=2, h=1, w=2]
    expectClose(upsampleScoresArgmax(scores, 2, 1, 2, 1, 4), [0, 0, 1, 1], EXACT);
  });

  it('interpolates rather than picking the nearest cell (hand-worked 1x3 -> 1x6)', () => {
    // Cluster 0 = [0, 2, 0], cluster 1 = 1.6 everywhere. Sources x: 0, 0.25, 0.75, 1.25, 1.75, 2, so
    // cluster 0 interpolates to 0, 0.5, 1.5, 1.5, 0.5, 0 and never wins, whereas nearest-cell
    // upsampling would give outputs 2 and 3 (nearest cell x = 1, score 2) to cluster 0.
    const scores = new Float32Array([0, 2, 0, 1.6, 1.6, 1.6]);
    expectClose(upsampleScoresArgmax(scores, 2, 1, 3, 1, 6), [1, 1, 1, 1, 1, 1], EXACT);
  });

  it('is the plain argmax at the same size, ties to the lower cluster', () => {
    const scores = new Float32Array([1, 5, 2, 2, 3, 2, 9, 2]); // [K=2, h=2, w=2]
    expectClose(upsampleScoresArgmax(scores, 2, 2, 2, 2, 2), [1, 0, 1, 0], EXACT);
  });

  it('agrees with a straightforward reference on random up- and downsampling (property)', () => {
    const cases = fc.record({
      K: fc.integer({ min: 1, max: 6 }),
      h: fc.integer({ min: 1, max: 7 }),
      w: fc.integer({ min: 1, max: 7 }),
      outH: fc.integer({ min: 1, max: 20 }),
      outW: fc.integer({ min: 1, max: 20 }),
      seed: fc.integer(),
    });
    fc.assert(
      fc.property(cases, ({ K, h, w, outH, outW, seed }) => {
        const rng = createRng(seed);
        const scores = Float32Array.from({ length: K * h * w }, () => rng.normal());
        expectClose(upsampleScoresArgmax(scores, K, h, w, outH, outW), referenceArgmax(scores, K, h, w, outH, outW), EXACT);
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('agrees with the reference at a realistic evaluation shape', () => {
    const rng = createRng(42);
    const [K, h, w, outH, outW] = [27, 45, 60, 360, 480];
    const scores = Float32Array.from({ length: K * h * w }, () => rng.normal());
    expectClose(upsampleScoresArgmax(scores, K, h, w, outH, outW), referenceArgmax(scores, K, h, w, outH, outW), EXACT);
  });

  it('rejects bad sizes', () => {
    expect(() => upsampleScoresArgmax(new Float32Array(7), 2, 2, 2, 4, 4)).toThrow(ShapeError);
    expect(() => upsampleScoresArgmax(new Float32Array(0), 0, 2, 2, 4, 4)).toThrow(ShapeError);
    expect(() => upsampleScoresArgmax(new Float32Array(8), 2, 2, 2, 0, 4)).toThrow(/outH must be an integer >= 1/);
  });
});
