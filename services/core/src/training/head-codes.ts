// Applies a trained head to backbone feature maps: [C, h, w] -> codes [D, h, w], for evaluation and
// segmentation.

import type { FeatureMap } from '../backbone/backbone.js';
import type { HeadParams, TrainingEngine } from '../engines/engine.js';
import type { CodeFunction } from '../evaluation/evaluate.js';

/** [C, cells] <-> [cells, C] */
export function transposePlanes(data: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[c * rows + r] = data[r * cols + c];
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
