import { describe, expect, it } from 'vitest';
import { float32ToFloat16, halfToFloatTable } from '../io/float16.js';
import { readCell, type StoredImage } from './feature-store.js';
import { transposePlanes } from './head-codes.js';

describe('feature store layout', () => {
  it('transposes float16 bits and float32 planes exactly, across tile edges', () => {
    for (const [rows, cols] of [[1, 1], [3, 130], [70, 65], [128, 64]]) {
      const half = Uint16Array.from({ length: rows * cols }, (_, i) => (i * 7919) & 0xffff);
      const float = Float32Array.from(half, (v) => v / 7);
      const outHalf = transposePlanes(half, rows, cols);
      const outFloat = transposePlanes(float, rows, cols);
      expect(outHalf).toBeInstanceOf(Uint16Array);
      expect(outFloat).toBeInstanceOf(Float32Array);
      for (let r = 0; r < rows; r++) {
        for (let c = 0; c < cols; c++) {
          expect(outHalf[c * rows + r]).toBe(half[r * cols + c]);
          expect(outFloat[c * rows + r]).toBe(float[r * cols + c]);
        }
      }
    }
  });

  it('reads a cell of the cell-major store as the backbone channel-major map held it', () => {
    const channels = 5;
    const height = 3;
    const width = 4;
    const cells = height * width;
    const planes = Float32Array.from({ length: channels * cells }, (_, i) => Math.sin(i) * 3);
    const half = float32ToFloat16(planes); // [C, cells]
    const image: StoredImage = { id: 'a', source: 0, height, width, data: transposePlanes(half, channels, cells) };
    const out = new Float32Array(channels + 2);
    for (let p = 0; p < cells; p++) {
      readCell(image, channels, p, out, 2);
      for (let c = 0; c < channels; c++) expect(out[2 + c]).toBe(halfToFloatTable[half[c * cells + p]]);
    }
  });
});
