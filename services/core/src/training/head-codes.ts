// Applies a trained head to backbone feature maps: [C, h, w] -> codes [D, h, w], for evaluation and
// segmentation.

import type { FeatureMap } from '../backbone/backbone.js';
import type { HeadParams, TrainingEngine } from '../engines/engine.js';
import type { CodeFunction } from '../evaluation/evaluate.js';

/** [rows, cols] -> [cols, rows], e.g. [C, cells] <-> [cells, C]; in tiles that stay in cache. */
export function transposePlanes<T extends Float32Array | Uint16Array>(data: T, rows: number, cols: number): T {
  const out = new (data.constructor as new (length: number) => T)(rows * cols);
  const TILE = 64;
  for (let r0 = 0; r0 < rows; r0 += TILE) {
    const r1 = Math.min(rows, r0 + TILE);
    for (let c0 = 0; c0 < cols; c0 += TILE) {
      const c1 = Math.min(cols, c0 + TILE);
      for (let r = r0; r < r1; r++) for (let c = c0; c < c1; c++) out[c * rows + r] = data[r * cols + c];
    }
  }
  return out;
}

export function headCodeFunction(engine: TrainingEngine, head: HeadParams, channels: number, codeDim: number): CodeFunction {
  return async (features: FeatureMap) => {
    const cells = features.height * features.width;
    const rows = transposePlanes(features.data, channels, cells); // [cells, C]
    const codes = await engine.codes(head, { channels, codeDim }, rows, cells); // [cells, D]
    return { channels: codeDim, height: features.height, width: features.width, data: transposePlanes(codes, cells, codeDim) };
  };
}
