// Evaluation upsampling (DESIGN "Evaluation"): per-cluster scores on the feature grid are upsampled
// bilinearly to label resolution and reduced to the argmax cluster per output pixel, without ever
// materialising the [K, outH, outW] upsampled tensor.

import { ShapeError } from '../errors.js';

/** Source indices and weights of one axis for bilinear resampling (align_corners = false). */
interface AxisWeights {
  lo: Int32Array;
  hi: Int32Array;
  loWeight: Float64Array;
  hiWeight: Float64Array;
}

/**
 * Argmax over K of the bilinearly upsampled scores, as
 * `F.interpolate(scores, (outH, outW), mode='bilinear', align_corners=False).argmax(1)` in PyTorch:
 * source coordinate `(dst + 0.5) * in / out - 0.5`, clamped below at 0, neighbours clamped at the
 * border. Ties go to the lower cluster index (torch.argmax returns the first maximum). Interpolation
 * runs in float64, so exact near-ties may resolve differently from PyTorch's float32.
 *
 * Typical input: `scores[k, y, x] = <code(y, x), normalised centroid k>` on the feature grid.
 * Cost: outH * (K * w) for the vertical pass plus outH * outW * K for the horizontal pass.
 *
 * @param scores - [K, h, w] row-major
 * @returns [outH * outW] cluster index per output pixel, row-major
 * @throws ShapeError when a size is not a positive integer or `scores.length !== K * h * w`
 */
export function upsampleScoresArgmax(
  scores: Float32Array,
  K: number,
  h: number,
  w: number,
  outH: number,
  outW: number,
): Int32Array {
  for (const [name, value] of [['K', K], ['h', h], ['w', w], ['outH', outH], ['outW', outW]] as const) {
    if (!Number.isInteger(value) || value < 1) throw new ShapeError(`${name} must be an integer >= 1, got ${value}`);
  }
  if (scores.length !== K * h * w) {
    throw new ShapeError(`scores have ${scores.length} values, expected [${K}, ${h}, ${w}] = ${K * h * w}`);
  }
  const rowsAxis = axisWeights(h, outH);
  const colsAxis = axisWeights(w, outW);
  const plane = h * w;
  // One output row interpolated vertically, laid out [w, K] so the per-pixel loop over K is contiguous.
  const row = new Float64Array(w * K);
  const out = new Int32Array(outH * outW);

  for (let oy = 0; oy < outH; oy++) {
    const y0 = rowsAxis.lo[oy] * w;
    const y1 = rowsAxis.hi[oy] * w;
    const wy0 = rowsAxis.loWeight[oy];
    const wy1 = rowsAxis.hiWeight[oy];
    for (let k = 0; k < K; k++) {
      const base = k * plane;
      for (let x = 0; x < w; x++) row[x * K + k] = wy0 * scores[base + y0 + x] + wy1 * scores[base + y1 + x];
    }
    const outRow = oy * outW;
    for (let ox = 0; ox < outW; ox++) {
      const a = colsAxis.lo[ox] * K;
      const b = colsAxis.hi[ox] * K;
      const wx0 = colsAxis.loWeight[ox];
      const wx1 = colsAxis.hiWeight[ox];
      let best = 0;
      let bestScore = -Infinity;
      for (let k = 0; k < K; k++) {
        const s = wx0 * row[a + k] + wx1 * row[b + k];
        if (s > bestScore) {
          bestScore = s;
          best = k;
        }
      }
      out[outRow + ox] = best;
    }
  }
  return out;
}

/** PyTorch's `area_pixel_compute_source_index` for align_corners = false, plus the neighbour clamp. */
function axisWeights(inSize: number, outSize: number): AxisWeights {
  const scale = inSize / outSize;
  const lo = new Int32Array(outSize);
  const hi = new Int32Array(outSize);
  const loWeight = new Float64Array(outSize);
  const hiWeight = new Float64Array(outSize);
  for (let o = 0; o < outSize; o++) {
    const src = Math.max(0, (o + 0.5) * scale - 0.5);
    const i0 = Math.floor(src); // src < inSize - 0.5, so i0 <= inSize - 1
    const lambda = src - i0;
    lo[o] = i0;
    hi[o] = i0 < inSize - 1 ? i0 + 1 : i0;
    hiWeight[o] = lambda;
    loWeight[o] = 1 - lambda;
  }
  return { lo, hi, loWeight, hiWeight };
}
