// Names for a model's classes from a few labelled images: the clusters are matched to the dataset's
// classes exactly as the evaluation matches them (Hungarian algorithm on the confusion matrix,
// maximising matched pixels), and each matched cluster takes its class's name. The labels serve only
// this matching.

import type { Backbone } from '../backbone/backbone.js';
import { requireLabels, type Dataset } from '../dataset/dataset.js';
import { unsupervisedMetrics } from '../metrics/segmentation-metrics.js';
import { confusionOnDataset, type EvaluateOptions } from './evaluate.js';

/** A proposed name for one class id of the model. */
export interface ClassNameProposal {
  id: number;
  /** The matched dataset class, or undefined when the cluster matched none (more clusters than classes, or no pixels). */
  name?: string;
  /** Pixels predicted as this id. */
  pixels: number;
  /** Of those, the share labelled with the proposed class, in [0, 1]. */
  precision: number;
  /** IoU of the id with the proposed class, in [0, 1]. */
  iou: number;
}

/**
 * Proposes a name for each of the `k` class ids of centroids [K, D] from a labelled dataset.
 *
 * @returns one proposal per id 0..k-1, and the number of images read
 */
export async function proposeClassNames(
  dataset: Dataset,
  backbone: Backbone,
  centroids: Float32Array,
  k: number,
  options: EvaluateOptions = {},
): Promise<{ proposals: ClassNameProposal[]; images: number }> {
  requireLabels(dataset);
  const classes = dataset.info.classes;
  const { confusion, images } = await confusionOnDataset(dataset, backbone, centroids, k, options);
  const { clusterToClass } = unsupervisedMetrics(confusion, k, classes.length, classes);
  const columnSums = new Float64Array(classes.length);
  for (let id = 0; id < k; id++) for (let c = 0; c < classes.length; c++) columnSums[c] += confusion[id * classes.length + c];
  const proposals = Array.from({ length: k }, (_, id): ClassNameProposal => {
    let pixels = 0;
    for (let c = 0; c < classes.length; c++) pixels += confusion[id * classes.length + c];
    const c = clusterToClass[id];
    const hits = c >= 0 ? confusion[id * classes.length + c] : 0;
    if (c < 0 || hits === 0) return { id, pixels, precision: 0, iou: 0 };
    return { id, name: classes[c], pixels, precision: hits / pixels, iou: hits / (pixels + columnSums[c] - hits) };
  });
  return { proposals, images };
}
