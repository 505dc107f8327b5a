// How FUSS applies the dense CRF to a segmentation: cosine scores of the feature grid become
// probabilities (STEGO's cluster probe, softmax(2 · cos)), the CRF refines them on the image
// (box-downsampled to a bounded working size, so its cost does not grow with the image), and the
// refined probabilities are upsampled to the image size, where the most probable class wins.

import { resizeBilinearChw } from '../backbone/feature-ops.js';
import { CRF_DEFAULTS } from '../defaults.js';
import { ConfigError, ShapeError } from '../errors.js';
import type { RgbImage } from '../image/image.js';
import { upsampleScoresArgmax } from '../metrics/upsample.js';
import { denseCrf, denseCrfOptions, type DenseCrfOptions } from './dense-crf.js';

/** Options of {@link refineWithCrf}; defaults in {@link CRF_DEFAULTS}. */
export interface CrfRefineOptions extends Partial<DenseCrfOptions> {
  /** Cosine scores are multiplied by this before the softmax (STEGO's cluster-probe alpha, 2). */
  scoreScale?: number;
  /**
   * The CRF runs on the image box-downsampled by the smallest integer factor that leaves at most
   * this many pixels (its positional standard deviations shrink by the same factor).
   */
  workingPixels?: number;
}

/**
 * The class of every pixel of `image` after dense-CRF refinement of the grid's cosine scores.
 *
 * @param image - the image at the output size
 * @param cellScores - [k, h, w] cosine scores on the feature grid (`cosineScores`)
 * @returns [image.height * image.width] class ids in [0, k)
 * @throws ShapeError when `cellScores` is not [k, h, w]
 * @throws ConfigError for out-of-range options
 */
export function refineWithCrf(image: RgbImage, cellScores: Float32Array, k: number, h: number, w: number, options: CrfRefineOptions = {}): Int32Array {
  if (cellScores.length !== k * h * w) throw new ShapeError(`CRF scores hold ${cellScores.length} values, expected [${k}, ${h}, ${w}]`);
  const crf = denseCrfOptions(options);
  const scoreScale = options.scoreScale ?? CRF_DEFAULTS.scoreScale;
  const workingPixels = options.workingPixels ?? CRF_DEFAULTS.workingPixels;
  if (!(scoreScale > 0 && Number.isFinite(scoreScale))) throw new ConfigError(`CRF scoreScale must be a finite number > 0, got ${scoreScale}`);
  if (!Number.isInteger(workingPixels) || workingPixels < 1) throw new ConfigError(`CRF workingPixels must be an integer >= 1, got ${workingPixels}`);
  const factor = Math.max(1, Math.ceil(Math.sqrt((image.width * image.height) / workingPixels)));
  const small = factor === 1 ? image : boxDownsample(image, factor);
  const logits = resizeBilinearChw(cellScores, k, h, w, small.height, small.width);
  for (let i = 0; i < logits.length; i++) logits[i] *= scoreScale;
  const q = denseCrf(small, logits, k, { ...crf, gaussianXyStd: crf.gaussianXyStd / factor, bilateralXyStd: crf.bilateralXyStd / factor });
  return upsampleScoresArgmax(q, k, small.height, small.width, image.height, image.width);
}

/** Mean of each factor x factor block (partial blocks at the right and bottom edges included). */
export function boxDownsample(image: RgbImage, factor: number): RgbImage {
  const width = Math.ceil(image.width / factor);
  const height = Math.ceil(image.height / factor);
  const sums = new Float64Array(width * height * 3);
  const counts = new Float64Array(width * height);
  for (let y = 0; y < image.height; y++) {
    const row = Math.floor(y / factor) * width;
    for (let x = 0; x < image.width; x++) {
      const cell = row + Math.floor(x / factor);
      const src = (y * image.width + x) * 3;
      sums[cell * 3] += image.data[src];
      sums[cell * 3 + 1] += image.data[src + 1];
      sums[cell * 3 + 2] += image.data[src + 2];
      counts[cell]++;
    }
  }
  const data = new Uint8Array(width * height * 3);
  for (let i = 0; i < data.length; i++) data[i] = Math.round(sums[i] / counts[Math.floor(i / 3)]);
  return { width, height, data };
}
