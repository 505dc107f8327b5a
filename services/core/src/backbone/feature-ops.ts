// Small numeric helpers on [C, h, w] feature maps used by the backbone runner.

/**
 * Bilinear resize of a [C, h, w] map to [C, outH, outW] with half-pixel centres
 * (align_corners = false, as torch.nn.functional.interpolate).
 */
export function resizeBilinearChw(src: Float32Array, channels: number, h: number, w: number, outH: number, outW: number): Float32Array {
  const out = new Float32Array(channels * outH * outW);
  const ys = axisTaps(h, outH);
  const xs = axisTaps(w, outW);
  for (let c = 0; c < channels; c++) {
    const plane = c * h * w;
    const outPlane = c * outH * outW;
    for (let oy = 0; oy < outH; oy++) {
      const r0 = plane + ys.i0[oy] * w;
      const r1 = plane + ys.i1[oy] * w;
      const wy = ys.t[oy];
      for (let ox = 0; ox < outW; ox++) {
        const x0 = xs.i0[ox];
        const x1 = xs.i1[ox];
        const wx = xs.t[ox];
        const top = src[r0 + x0] + (src[r0 + x1] - src[r0 + x0]) * wx;
        const bottom = src[r1 + x0] + (src[r1 + x1] - src[r1 + x0]) * wx;
        out[outPlane + oy * outW + ox] = top + (bottom - top) * wy;
      }
    }
  }
  return out;
}

/**
 * The same sampling along one axis as a matrix [outSize, inSize] (row o holds the weights of output o),
 * so that a resize of a [C, h, w] map is two matrix products: Ay X Ax^T per channel.
 */
export function bilinearResizeMatrix(inSize: number, outSize: number): Float32Array {
  const { i0, i1, t } = axisTaps(inSize, outSize);
  const matrix = new Float32Array(outSize * inSize);
  for (let o = 0; o < outSize; o++) {
    matrix[o * inSize + i0[o]] += 1 - t[o];
    matrix[o * inSize + i1[o]] += t[o];
  }
  return matrix;
}

/** Source indices and weights along one axis for half-pixel bilinear sampling. */
function axisTaps(inSize: number, outSize: number): { i0: Int32Array; i1: Int32Array; t: Float32Array } {
  const i0 = new Int32Array(outSize);
  const i1 = new Int32Array(outSize);
  const t = new Float32Array(outSize);
  const scale = inSize / outSize;
  for (let o = 0; o < outSize; o++) {
    const s = Math.max(0, (o + 0.5) * scale - 0.5);
    const lo = Math.min(Math.floor(s), inSize - 1);
    i0[o] = lo;
    i1[o] = Math.min(lo + 1, inSize - 1);
    t[o] = s - lo;
  }
  return { i0, i1, t };
}

/** L2-normalises, in place, the channel vector of every cell of a [C, cells] map (zero vectors stay zero). */
export function l2NormalizeCells(data: Float32Array, channels: number, cells: number): void {
  const norms = new Float64Array(cells);
  for (let c = 0; c < channels; c++) {
    const base = c * cells;
    for (let p = 0; p < cells; p++) norms[p] += data[base + p] * data[base + p];
  }
  for (let p = 0; p < cells; p++) norms[p] = norms[p] > 0 ? 1 / Math.sqrt(norms[p]) : 0;
  for (let c = 0; c < channels; c++) {
    const base = c * cells;
    for (let p = 0; p < cells; p++) data[base + p] *= norms[p];
  }
}
