import { describe, expect, it } from 'vitest';
import { float32ToFloat16, halfToFloatTable } from '../io/float16.js';
import { readCell, transposeHalf, type StoredImage } from './feature-store.js';

describe('feature store layout', () => {
  it('transposes float16 planes exactly, across tile edges', () => {
    for (const [rows, cols] of [[1, 1], [3, 130], [70, 65], [128, 64]]) {
      const data = Uint16Array.from({ length: rows * cols }, (_, i) => (i * 7919) & 0xffff);
      const out = transposeHalf(data, rows, cols);
      for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) expect(out[c * rows + r]).toBe(data[r * cols + c]);
    }
  });

  it('reads a cell of the cell-major store as the backbone channel-major map held it', () => {
    const channels = 5;
    const height = 3;
    const width = 4;
    const cells = height * width;
    const planes = Float32Array.from({ length: channels * cells }, (_, i) => Math.sin(i) * 3);
    const half = float32ToFloat16(planes); // [C, cells]
    const image: StoredImage = { id: 'a', source: 0, height, width, data: transposeHalf(half, channels, cells) };
    const out = new Float32Array(channels + 2);
    for (let p = 0; p < cells; p++) {
      readCell(image, channels, p, out, 2);
      for (let c = 0; c < channels; c++) expect(out[2 + c]).toBe(halfToFloatTable[half[c * cells + p]]);
    }
  });
});
