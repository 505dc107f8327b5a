// The raw-feature k-means baseline (DESIGN "Baselines"): sample unit-normalised feature cells from
// the fitting images, run k-means, and use the centres as centroids for evaluation.

import type { Backbone } from '../backbone/backbone.js';
import type { Dataset } from '../dataset/dataset.js';
import { extractFeatureCells, gatherCells, type ExtractOptions } from '../features/extract.js';
import { kmeansOnnx } from '../engines/onnx/distance-kernel.js';
import { createRng, type Rng } from '../math/rng.js';
import { ConfigError } from '../errors.js';
import type { FeatureMap } from '../backbone/backbone.js';

export interface KMeansBaselineOptions extends ExtractOptions {
  k: number;
  seed?: number;
  /** Feature cells sampled over the whole fitting set (spread evenly over images). Default 100 000. */
  maxSamples?: number;
  /** k-means restarts (default 3) and iteration cap (default 100). */
  restarts?: number;
  maxIterations?: number;
  /** onnxruntime intra-op threads for the k-means distances (0: all cores, the default). */
  threads?: number;
}

export interface FittedCentroids {
  /** [k, channels] k-means centres of unit-normalised cells (normalise before cosine use). */
  centroids: Float32Array;
  k: number;
  channels: number;
  samples: number;
  inertia: number;
  iterations: number;
}

/**
 * Writes up to `count` random cells of a feature map, each L2-normalised, as rows of `out` starting
 * at row `firstRow`; zero cells are skipped. Returns the number of rows written.
 * @param out [rows, channels]
 */
export function sampleUnitCells(features: FeatureMap, count: number, rng: Rng, out: Float32Array, firstRow: number): number {
  const cellCount = features.height * features.width;
  const rows = gatherCells(features.data, features.channels, cellCount, pickRandomCells(cellCount, count, rng));
  return appendUnitRows(rows, features.channels, out, firstRow);
}

/** `count` distinct cells of `cellCount` in ascending order (all of them when count >= cellCount). */
export function pickRandomCells(cellCount: number, count: number, rng: Rng): number[] {
  if (count >= cellCount) return Array.from({ length: cellCount }, (_, i) => i);
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(rng.int(cellCount));
  return [...chosen].sort((a, b) => a - b);
}

/** Copies rows [n, channels] into `out` from row `firstRow`, each L2-normalised; zero rows are skipped. Returns the rows written. */
function appendUnitRows(rows: Float32Array, channels: number, out: Float32Array, firstRow: number): number {
  let row = firstRow;
  for (let base = 0; base < rows.length; base += channels) {
    let norm = 0;
    for (let ch = 0; ch < channels; ch++) norm += rows[base + ch] ** 2;
    if (norm === 0) continue;
    const scale = 1 / Math.sqrt(norm);
    for (let ch = 0; ch < channels; ch++) out[row * channels + ch] = rows[base + ch] * scale;
    row++;
  }
  return row - firstRow;
}

/** Feature cells sampled by {@link sampleFeatureCells}. */
export interface SampledCells {
  /** [samples, channels] unit-normalised cells. */
  points: Float32Array;
  samples: number;
  channels: number;
}

/**
 * Samples up to `maxSamples` (default 100 000) unit-normalised feature cells spread evenly over a
 * dataset's images (the points the raw-feature baseline clusters). Draws from `rng`.
 */
export async function sampleFeatureCells(
  dataset: Dataset,
  backbone: Backbone,
  rng: Rng,
  options: ExtractOptions & { maxSamples?: number } = {},
): Promise<SampledCells> {
  const maxSamples = options.maxSamples ?? 100_000;
  const perImage = Math.max(1, Math.ceil(maxSamples / dataset.items.length));
  let points = new Float32Array(0);
  let channels = 0;
  let rows = 0;
  // Only the sampled cells of each cached map are converted from float16 (extractFeatureCells).
  const pick = (cellCount: number) => pickRandomCells(cellCount, perImage, rng);
  for await (const sampled of extractFeatureCells(dataset.items, backbone, pick, options)) {
    if (channels === 0) {
      channels = sampled.channels;
      points = new Float32Array(perImage * dataset.items.length * channels);
    } else if (sampled.channels !== channels) {
      throw new ConfigError(`feature maps disagree on channels (${sampled.channels} vs ${channels})`);
    }
    rows += appendUnitRows(sampled.rows, channels, points, rows);
  }
  return { points: points.subarray(0, rows * channels), samples: rows, channels };
}

/** Fits k-means centroids on unit-normalised backbone features of a dataset's images. */
export async function fitKMeansCentroids(dataset: Dataset, backbone: Backbone, options: KMeansBaselineOptions): Promise<FittedCentroids> {
  const rng = createRng(options.seed ?? 0);
  const { points, samples, channels } = await sampleFeatureCells(dataset, backbone, rng, options);
  if (samples < options.k) {
    throw new ConfigError(`k-means with k = ${options.k} needs at least ${options.k} feature cells, the fitting set gave ${samples}`);
  }
  const restarts = options.restarts ?? 3;
  const started = performance.now();
  const result = await kmeansOnnx(points, channels, {
    k: options.k,
    rng: rng.fork(),
    restarts,
    maxIterations: options.maxIterations ?? 100,
    threads: options.threads,
  });
  const seconds = (performance.now() - started) / 1000;
  options.log?.(`k-means: ${samples} x ${channels}, k = ${options.k}, ${restarts} restarts in ${seconds.toFixed(1)} s (best: ${result.iterations} iterations)`);
  return {
    centroids: result.centroids,
    k: options.k,
    channels,
    samples,
    inertia: result.inertia,
    iterations: result.iterations,
  };
}
