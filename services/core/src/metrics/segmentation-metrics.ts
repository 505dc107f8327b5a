// Unsupervised segmentation scores (DESIGN "Evaluation"): a cluster x class confusion matrix, clusters
// matched to classes by the Hungarian algorithm, then mIoU, pixel accuracy and per-class IoU in percent.

import { hungarianMaximize } from '../cluster/hungarian.js';
import { ConfigError, DataError, ShapeError } from '../errors.js';

/** Scores of {@link unsupervisedMetrics}; every score is a percentage in [0, 100]. */
export interface UnsupervisedMetrics {
  /** Mean IoU over classes whose union (TP + FP + FN) is non-zero; 0 when no class qualifies. */
  mIoU: number;
  /** Matched true positives over all counted pixels; 0 when no pixel was counted. */
  pixelAccuracy: number;
  /** IoU per class name; `null` for a class absent from both labels and its matched cluster. */
  perClassIoU: Record<string, number | null>;
  /** [numClusters]: the class each cluster is matched to, -1 if unmatched (more clusters than classes). */
  clusterToClass: Int32Array;
  /** Pixels counted in the confusion matrix (ignore-index pixels excluded). */
  pixels: number;
}

/**
 * A zeroed confusion matrix of pixel counts.
 *
 * @returns [numClusters, numClasses] row-major float64 (exact for counts up to 2^53)
 */
export function createConfusion(numClusters: number, numClasses: number): Float64Array {
  checkDims(numClusters, numClasses);
  return new Float64Array(numClusters * numClasses);
}

/**
 * Adds one image (or batch) of pixels to `confusion` in place: `confusion[prediction, label] += 1`
 * for every pixel whose label is not `ignoreIndex`. Inputs are validated before anything is added,
 * so a failed call leaves `confusion` unchanged.
 *
 * @param confusion - [numClusters, numClasses], updated in place
 * @param predictions - [pixels] cluster id per pixel, in [0, numClusters)
 * @param labels - [pixels] class id per pixel, in [0, numClasses) or equal to `ignoreIndex`
 * @param ignoreIndex - label value excluded from scoring (e.g. 255)
 * @throws ShapeError when lengths disagree
 * @throws DataError naming the first pixel whose prediction or label is out of range
 */
export function accumulateConfusion(
  confusion: Float64Array,
  numClusters: number,
  numClasses: number,
  predictions: Int32Array | Uint8Array,
  labels: Uint8Array,
  ignoreIndex: number,
): void {
  checkConfusion(confusion, numClusters, numClasses);
  if (predictions.length !== labels.length) {
    throw new ShapeError(`predictions have ${predictions.length} pixels but labels have ${labels.length}`);
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    const prediction = predictions[i];
    if (prediction < 0 || prediction >= numClusters) {
      throw new DataError(`prediction ${prediction} at pixel ${i} is outside [0, ${numClusters})`);
    }
    if (label !== ignoreIndex && label >= numClasses) {
      throw new DataError(`label ${label} at pixel ${i} is outside [0, ${numClasses}) and is not the ignore index ${ignoreIndex}`);
    }
  }
  for (let i = 0; i < labels.length; i++) {
    const label = labels[i];
    if (label !== ignoreIndex) confusion[predictions[i] * numClasses + label]++;
  }
}

/**
 * Matches clusters to classes one-to-one by the Hungarian algorithm, maximising matched pixels (as
 * STEGO's `UnsupervisedMetrics`), then scores the matching. For class c matched to cluster k:
 * TP = conf[k, c], FP = (row k sum) - TP, FN = (column c sum) - TP, IoU = TP / (TP + FP + FN).
 * An unmatched class has TP = FP = 0, so IoU = 0 when it occurs. mIoU averages over classes with a
 * non-zero union (STEGO drops NaN IoUs the same way); pixel accuracy = Σ matched TP / counted pixels.
 *
 * @param confusion - [numClusters, numClasses] pixel counts (see {@link accumulateConfusion})
 * @param classNames - [numClasses] keys of `perClassIoU`; default `class_<i>`
 * @returns scores in percent; see {@link UnsupervisedMetrics}
 * @throws ShapeError when the confusion size or class-name count is wrong
 * @throws ConfigError when class names repeat
 */
export function unsupervisedMetrics(
  confusion: Float64Array,
  numClusters: number,
  numClasses: number,
  classNames?: readonly string[],
): UnsupervisedMetrics {
  checkConfusion(confusion, numClusters, numClasses);
  const names = classNames ?? Array.from({ length: numClasses }, (_, c) => `class_${c}`);
  if (names.length !== numClasses) throw new ShapeError(`got ${names.length} class names for ${numClasses} classes`);
  if (new Set(names).size !== names.length) throw new ConfigError(`class names must be unique, got [${names.join(', ')}]`);

  const rowSums = new Float64Array(numClusters);
  const columnSums = new Float64Array(numClasses);
  let pixels = 0;
  for (let k = 0; k < numClusters; k++) {
    for (let c = 0; c < numClasses; c++) {
      const count = confusion[k * numClasses + c];
      rowSums[k] += count;
      columnSums[c] += count;
      pixels += count;
    }
  }

  const clusterToClass = hungarianMaximize(confusion, numClusters, numClasses);
  const clusterOfClass = new Int32Array(numClasses).fill(-1);
  for (let k = 0; k < numClusters; k++) {
    if (clusterToClass[k] >= 0) clusterOfClass[clusterToClass[k]] = k;
  }

  const perClassIoU: Record<string, number | null> = {};
  let iouSum = 0;
  let scoredClasses = 0;
  let matchedPixels = 0;
  for (let c = 0; c < numClasses; c++) {
    const k = clusterOfClass[c];
    const tp = k >= 0 ? confusion[k * numClasses + c] : 0;
    const fp = k >= 0 ? rowSums[k] - tp : 0;
    const fn = columnSums[c] - tp;
    const union = tp + fp + fn;
    matchedPixels += tp;
    if (union > 0) {
      const iou = (100 * tp) / union;
      perClassIoU[names[c]] = iou;
      iouSum += iou;
      scoredClasses++;
    } else {
      perClassIoU[names[c]] = null;
    }
  }

  return {
    mIoU: scoredClasses > 0 ? iouSum / scoredClasses : 0,
    pixelAccuracy: pixels > 0 ? (100 * matchedPixels) / pixels : 0,
    perClassIoU,
    clusterToClass,
    pixels,
  };
}

function checkDims(numClusters: number, numClasses: number): void {
  if (!Number.isInteger(numClusters) || numClusters < 1 || !Number.isInteger(numClasses) || numClasses < 1) {
    throw new ShapeError(`confusion dims must be integers >= 1, got [${numClusters}, ${numClasses}]`);
  }
}

function checkConfusion(confusion: Float64Array, numClusters: number, numClasses: number): void {
  checkDims(numClusters, numClasses);
  if (confusion.length !== numClusters * numClasses) {
    throw new ShapeError(
      `confusion has ${confusion.length} values, expected [${numClusters}, ${numClasses}] = ${numClusters * numClasses}`,
    );
  }
}
