// A participant's backbone features held in memory (float16) for training, with the statistics the
// batch sampler needs: the participant's mean feature (for centring) and each image's nearest
// neighbours by pooled feature. Features come from the cache; the backbone runs at most once per image.

import type { Backbone } from '../backbone/backbone.js';
import { extractFeatures, type ExtractOptions } from '../features/extract.js';
import { float32ToFloat16, halfToFloatTable } from '../io/float16.js';
import { ConfigError } from '../errors.js';

export interface StoredImage {
  id: string;
  height: number;
  width: number;
  /** [C, height * width] float16 bits, channel-major as the backbone produced them. */
  data: Uint16Array;
}

export interface FeatureStore {
  channels: number;
  images: StoredImage[];
  /** Mean raw feature over every cell of every image. [C] */
  mean: Float32Array;
  /** For each image, indices of its nearest other images by cosine of mean-pooled features, best first. */
  neighbours: Int32Array[];
}

/** Reads cell `p` of a stored image into `out[offset .. offset + C)` as float32. */
export function readCell(image: StoredImage, channels: number, p: number, out: Float32Array, offset: number): void {
  const cells = image.height * image.width;
  for (let c = 0; c < channels; c++) out[offset + c] = halfToFloatTable[image.data[c * cells + p]];
}

/**
 * Loads (from the feature cache, or by running the backbone once) the features of a participant's
 * images, and computes their mean and `neighbourCount` nearest neighbours (STEGO uses 7).
 */
export async function loadFeatureStore(
  items: readonly { id: string; imagePath: string }[],
  backbone: Backbone,
  options: ExtractOptions & { neighbourCount?: number } = {},
): Promise<FeatureStore> {
  const images: StoredImage[] = [];
  const pooled: Float32Array[] = [];
  let channels = 0;
  let sum = new Float64Array(0);
  let totalCells = 0;
  for await (const { item, features } of extractFeatures(items, backbone, options)) {
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
    images.push({ id: item.id, height: features.height, width: features.width, data });
  }
  if (images.length === 0) throw new ConfigError('no images to train on');
  const mean = Float32Array.from(sum, (s) => s / totalCells);
  return { channels, images, mean, neighbours: nearestNeighbours(pooled, options.neighbourCount ?? 7) };
}

/** Indices of the `count` most cosine-similar other vectors for each vector, best first. */
export function nearestNeighbours(vectors: Float32Array[], count: number): Int32Array[] {
  const n = vectors.length;
  const unit = vectors.map((v) => {
    let norm = 0;
    for (const x of v) norm += x * x;
    const scale = norm > 0 ? 1 / Math.sqrt(norm) : 0;
    return v.map((x) => x * scale);
  });
  const k = Math.min(count, n - 1);
  return unit.map((a, i) => {
    const scored: { j: number; s: number }[] = [];
    for (let j = 0; j < n; j++) {
      if (j === i) continue;
      const b = unit[j];
      let s = 0;
      for (let c = 0; c < a.length; c++) s += a[c] * b[c];
      scored.push({ j, s });
    }
    scored.sort((x, y) => y.s - x.s || x.j - y.j);
    return Int32Array.from(scored.slice(0, k), (e) => e.j);
  });
}
