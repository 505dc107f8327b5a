// Public surface of @fuss/core: pure maths plus the few I/O pieces (images, backbone, caches, datasets).

export * from './errors.js';
export * from './tensor.js';
export * from './math/rng.js';
export * from './math/vectors.js';
export * from './image/image.js';
export * from './backbone/descriptor.js';
export * from './backbone/backbone.js';
export * from './backbone/feature-ops.js';
export * from './backbone/hub.js';
export * from './io/float16.js';
export * from './io/feature-cache.js';
export * from './dataset/dataset.js';
export * from './features/extract.js';
export * from './cluster/kmeans.js';
export * from './cluster/maximin.js';
export * from './cluster/hungarian.js';
export * from './metrics/segmentation-metrics.js';
export * from './metrics/upsample.js';
export * from './partition/partition.js';
export * from './evaluation/evaluate.js';
export * from './evaluation/kmeans-baseline.js';
export * from './onnx/model-builder.js';
