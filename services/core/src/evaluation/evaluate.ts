// Unsupervised evaluation (DESIGN section 2, "Evaluation"): per image, score every grid cell against
// the L2-normalised centroids, upsample the scores bilinearly to label resolution, take the nearest
// centroid per pixel, accumulate a K x classes confusion matrix and match clusters to classes with the
// Hungarian algorithm. Labels are read here and nowhere else. Optionally each prediction is refined
// with the dense CRF on the image first (`refine: 'crf'`), as STEGO's evaluation does.
//
// Upsampling scores equals upsampling the codes: <bilinear(s), m> = bilinear(<s, m>), and the cosine's
// division by |bilinear(s)| is the same for every centroid, so the argmax is unchanged.

import type { Backbone, FeatureMap } from '../backbone/backbone.js';
import { readLabelMap, requireLabels, type Dataset } from '../dataset/dataset.js';
import { extractFeatures, type ExtractOptions } from '../features/extract.js';
import { accumulateConfusion, createConfusion, unsupervisedMetrics } from '../metrics/segmentation-metrics.js';
import { upsampleScoresArgmax } from '../metrics/upsample.js';
import { normalizeRows } from '../math/vectors.js';
import { l2NormalizeCells } from '../backbone/feature-ops.js';
import { decodeRgb } from '../image/image.js';
import { refineWithCrf, type CrfRefineOptions } from '../refine/crf-refine.js';

export interface SegmentationMetrics {
  /** Mean IoU over classes present in labels or predictions, percent. */
  mIoU: number;
  /** Matched pixels over counted pixels, percent. */
  pixelAccuracy: number;
  /** IoU per class name, percent; null for a class absent from both labels and predictions. */
  perClassIoU: Record<string, number | null>;
  images: number;
  pixels: number;
}

/** Maps backbone features [C, h, w] to codes [D, h, w] (identity for the raw-feature baseline). */
export type CodeFunction = (features: FeatureMap) => FeatureMap | Promise<FeatureMap>;

/**
 * Per-cell scores of codes against centroids: scores[k, p] = <codes[:, p], centroidsUnit[k]>.
 * @param centroidsUnit [K, D] unit rows
 * @returns [K, h*w]
 */
export function centroidScores(codes: FeatureMap, centroidsUnit: Float32Array, k: number): Float32Array {
  const cells = codes.height * codes.width;
  const d = codes.channels;
  if (centroidsUnit.length !== k * d) throw new RangeError(`centroids hold ${centroidsUnit.length} values, expected ${k} x ${d}`);
  const scores = new Float32Array(k * cells);
  for (let j = 0; j < k; j++) {
    const row = scores.subarray(j * cells, (j + 1) * cells);
    for (let c = 0; c < d; c++) {
      const weight = centroidsUnit[j * d + c];
      if (weight === 0) continue;
      const plane = codes.data.subarray(c * cells, (c + 1) * cells);
      for (let p = 0; p < cells; p++) row[p] += weight * plane[p];
    }
  }
  return scores;
}

/**
 * Cosine similarity of every cell's code with every unit centroid: `scores[k, cell] = <ŝ, m̂_k>`
 * (same argmax as {@link centroidScores}; the scale the dense CRF's probabilities need).
 *
 * @param codes - [D, h, w] head codes (not modified)
 * @param centroidsUnit - [K, D] unit rows
 * @returns [K, h, w]
 */
export function cosineScores(codes: FeatureMap, centroidsUnit: Float32Array, k: number): Float32Array {
  const unit = codes.data.slice();
  l2NormalizeCells(unit, codes.channels, codes.height * codes.width);
  return centroidScores({ ...codes, data: unit }, centroidsUnit, k);
}

/** Cluster id per pixel at (outWidth x outHeight). */
export function assignPixels(codes: FeatureMap, centroidsUnit: Float32Array, k: number, outWidth: number, outHeight: number): Int32Array {
  const scores = centroidScores(codes, centroidsUnit, k);
  return upsampleScoresArgmax(scores, k, codes.height, codes.width, outHeight, outWidth);
}

export interface EvaluateOptions extends ExtractOptions {
  /** Codes from features; identity (raw features) by default. */
  codes?: CodeFunction;
  /** `crf`: refine every prediction with the dense CRF on the image (`refineWithCrf`). Default none. */
  refine?: 'none' | 'crf';
  /** Options of the refinement. */
  crf?: CrfRefineOptions;
}

/**
 * The [K, classes] confusion matrix of centroids [K, D] on a labelled dataset: pixel counts of
 * (predicted cluster, label), ignore-index pixels excluded.
 */
export async function confusionOnDataset(
  dataset: Dataset,
  backbone: Backbone,
  centroids: Float32Array,
  k: number,
  options: EvaluateOptions = {},
): Promise<{ confusion: Float64Array; images: number }> {
  requireLabels(dataset);
  const info = dataset.info;
  const numClasses = info.classes.length;
  const dim = centroids.length / k;
  const centroidsUnit = normalizeRows(centroids, k, dim);
  const confusion = createConfusion(k, numClasses);
  let images = 0;
  for await (const { item, features, imageWidth, imageHeight } of extractFeatures(dataset.items, backbone, options)) {
    const label = await readLabelMap(item, info, { width: imageWidth, height: imageHeight });
    const codes = options.codes ? await options.codes(features) : features;
    let predictions: Int32Array;
    if (options.refine === 'crf') {
      const sameSize = imageWidth === label.width && imageHeight === label.height;
      const image = await decodeRgb(item.imagePath, { resize: sameSize ? undefined : { width: label.width, height: label.height }, name: item.imagePath });
      predictions = refineWithCrf(image, cosineScores(codes, centroidsUnit, k), k, codes.height, codes.width, options.crf);
    } else {
      predictions = assignPixels(codes, centroidsUnit, k, label.width, label.height);
    }
    accumulateConfusion(confusion, k, numClasses, predictions, label.data, info.ignoreIndex);
    images++;
  }
  return { confusion, images };
}

/**
 * Evaluates centroids [K, D] on a labelled dataset.
 */
export async function evaluateCentroids(
  dataset: Dataset,
  backbone: Backbone,
  centroids: Float32Array,
  k: number,
  options: EvaluateOptions = {},
): Promise<SegmentationMetrics> {
  const { confusion, images } = await confusionOnDataset(dataset, backbone, centroids, k, options);
  const classes = dataset.info!.classes;
  const metrics = unsupervisedMetrics(confusion, k, classes.length, classes);
  return {
    mIoU: metrics.mIoU,
    pixelAccuracy: metrics.pixelAccuracy,
    perClassIoU: metrics.perClassIoU,
    images,
    pixels: metrics.pixels,
  };
}
