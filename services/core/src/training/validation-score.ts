// A label-free score of a model on held-out images: the training loss (Eq. 7: correspondence plus
// centroid loss) averaged over a fixed set of batches without dropout, and the entropy of the cells'
// centroid assignments. The same seed gives the same batches, so scores of successive models compare.

import { createRng } from '../math/rng.js';
import type { HeadParams, TrainingEngine } from '../engines/engine.js';
import { QueryOrder, sampleBatch, type BatchOptions } from './batch-sampler.js';
import type { FeatureStore } from './feature-store.js';
import { assignmentEntropy } from './trainer.js';

/** Batches a model is scored on. */
export const VALIDATION_BATCHES = 4;

export interface ValidationScore {
  /** Mean loss over the batches (lower is better). */
  loss: number;
  /** Normalised entropy of the assignment counts over all batches, in [0, 1]. */
  clusterEntropy: number;
  images: number;
}

/** Scores `model` on `store` (held-out images) with `batch` settings (dropout is turned off). */
export async function validationScore(
  store: FeatureStore,
  engine: TrainingEngine,
  model: { head: HeadParams; centroids: Float32Array },
  batch: BatchOptions,
  options: { k: number; codeDim: number; lambda: number; seed: number; batches?: number },
): Promise<ValidationScore> {
  const rng = createRng(options.seed);
  const order = new QueryOrder(store.images.length, rng.fork());
  const settings = { ...batch, dropout: 0 };
  const shape = { channels: store.channels, codeDim: options.codeDim };
  const batches = options.batches ?? VALIDATION_BATCHES;
  let loss = 0;
  const counts = new Float64Array(options.k);
  for (let b = 0; b < batches; b++) {
    const result = await engine.step(model.head, model.centroids, shape, sampleBatch(store, settings, order, rng), { k: options.k, lambda: options.lambda });
    loss += result.loss;
    for (let i = 0; i < counts.length; i++) counts[i] += result.clusterCounts[i];
  }
  return { loss: loss / batches, clusterEntropy: assignmentEntropy(counts), images: store.sourceImages };
}
