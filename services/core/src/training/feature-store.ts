// A participant's backbone features held in memory (float16) for training, with the statistics the
// batch sampler needs: the participant's mean feature (for centring) and each image's nearest
// neighbours by pooled feature. Features come from the cache; the backbone runs at most once per image
// and view. With augmented views (features/views.ts) every view is a stored image of its own, and an
// image's neighbours are other images, never its own views.

import type { Backbone } from '../backbone/backbone.js';
import { extractFeatures, type ExtractOptions } from '../features/extract.js';
import { float32ToFloat16, halfToFloatTable } from '../io/float16.js';
import { ConfigError } from '../errors.js';
import { IDENTITY_VIEW, type FeatureView } from '../features/views.js';
import { transposePlanes } from './head-codes.js';

export interface StoredImage {
  /** The image's id, with `@<view>` for an augmented view. */
  id: string;
  /** Index of the source image (views of one image share it). */
  source: number;
  height: number;
  width: number;
  /**
   * [height * width, C] float16 bits, cell-major: the backbone's channel-major planes transposed once at
   * load, so the batch sampler reads a cell's C channels contiguously (a channel-major read strides
   * 2 bytes x cells per channel, a cache miss each: a quarter of a training run's time).
   */
  data: Uint16Array;
}

export interface FeatureStore {
  channels: number;
  images: StoredImage[];
  /** Mean raw feature over every cell of every image. [C] */
  mean: Float32Array;
  /** For each image, indices of its nearest other images by cosine of mean-pooled features, best first. */
  neighbours: Int32Array[];
  /** Source images (without their augmented views): the participant's sample count. */
  sourceImages: number;
}

/** Reads cell `p` of a stored image into `out[offset .. offset + C)` as float32. */
export function readCell(image: StoredImage, channels: number, p: number, out: Float32Array, offset: number): void {
  const data = image.data;
  const base = p * channels;
  for (let c = 0; c < channels; c++) out[offset + c] = halfToFloatTable[data[base + c]];
}

/**
 * Loads (from the feature cache, or by running the backbone once) the features of a participant's
 * images, and computes their mean and `neighbourCount` nearest neighbours (STEGO uses 7). With
 * `views`, each image is stored once per view, view by view (the image itself by default).
 */
export async function loadFeatureStore(
  items: readonly { id: string; imagePath: string }[],
  backbone: Backbone,
  options: Omit<ExtractOptions, 'view'> & { neighbourCount?: number; views?: readonly FeatureView[] } = {},
): Promise<FeatureStore> {
  const images: StoredImage[] = [];
  const pooled: Float32Array[] = [];
  let channels = 0;
  let sum = new Float64Array(0);
  let totalCells = 0;
  const sourceOf = new Map(items.map((item, index) => [item, index]));
  for (const view of options.views ?? [IDENTITY_VIEW]) {
    for await (const { item, features } of extractFeatures(items, backbone, { ...options, view })) {
      if (channels === 0) {
        channels = features.channels;
        sum = new Float64Array(channels);
      }
      const cells = features.height * features.width;
      // Statistics from the stored float16 values (without a cache the features arrive in float32).
      const data = float32ToFloat16(features.data);
      const pool = new Float32Array(channels);
      for (let c = 0; c < channels; c++) {
        let s = 0;
        const plane = data.subarray(c * cells, (c + 1) * cells);
        for (let p = 0; p < cells; p++) s += halfToFloatTable[plane[p]];
        sum[c] += s;
        pool[c] = s / cells;
      }
      totalCells += cells;
      pooled.push(pool);
      const id = view.id === IDENTITY_VIEW.id ? item.id : `${item.id}@${view.id}`;
      images.push({ id, source: sourceOf.get(item)!, height: features.height, width: features.width, data: transposePlanes(data, channels, cells) });
    }
  }
  if (images.length === 0) throw new ConfigError('no images to train on');
  const mean = Float32Array.from(sum, (s) => s / totalCells);
  const sources = Int32Array.from(images, (image) => image.source);
  return { channels, images, mean, neighbours: nearestNeighbours(pooled, options.neighbourCount ?? 7, sources), sourceImages: items.length };
}

/**
 * Indices of the `count` most cosine-similar other vectors for each vector, best first. With
 * `sources`, vectors of the same source (views of one image) are not each other's neighbours.
 */
export function nearestNeighbours(vectors: Float32Array[], count: number, sources?: Int32Array): Int32Array[] {
  const n = vectors.length;
  const unit = vectors.map((v) => {
    let norm = 0;
    for (const x of v) norm += x * x;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    return v.map((x) => x * scale);
  });
  return unit.map((a, i) => {
    const scored: { j: number; s: number }[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i || (sources && sources[j] === sources[i])) continue;
      const b = unit[j];
      let s = 0;
      for (let c = 0; c < a.length; c++) s += a[c] * b[c];
      scored.push({ j, s });
    }
    scored.sort((x, y) => y.s - x.s || x.j - y.j);
    return Int32Array.from(scored.slice(0, count), (e) => e.j);
  });
}
