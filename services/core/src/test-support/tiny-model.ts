import type { SegmentationModel } from '../io/model-file.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';

/** A small model (6 channels, code dimension 3, 4 classes) for the model file tests. */
export function tinyModel(): SegmentationModel {
  const rng = createRng(1);
  return {
    head: initHead({ channels: 6, codeDim: 3 }, rng),
    centroids: initCentroids(4, 3, rng),
    channels: 6,
    codeDim: 3,
    k: 4,
    backbone: { id: 'tiny', sha256: 'a'.repeat(64), featureKey: 'key1' },
    round: 2,
    version: 5,
    info: { steps: 10 },
  };
}
