// Feature extraction over a list of images with the on-disk cache: each image's backbone features are
// computed once; later runs read them back. Yields one image at a time so memory stays flat.

import { readFile } from 'node:fs/promises';
import type { Backbone, FeatureMap } from '../backbone/backbone.js';
import { FeatureCache, halfMapToFeatureMap, imageContentHash, type HalfFeatureMap } from '../io/feature-cache.js';
import { halfToFloatTable } from '../io/float16.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import { readImageSize } from '../image/image.js';
import { IDENTITY_VIEW, viewCacheKey, type FeatureView } from './views.js';

/** Where an image's features came from, and its size. */
export interface ExtractionProgress<T> {
  item: T;
  /** Size of the source image (labels are compared at this size). */
  imageWidth: number;
  imageHeight: number;
  /** `hit`: read from the cache; `computed`: backbone ran; `recomputed`: a damaged cache entry was replaced. */
  source: 'hit' | 'computed' | 'recomputed';
}

export interface ExtractedFeatures<T> extends ExtractionProgress<T> {
  features: FeatureMap;
}

export interface ExtractOptions {
  /** Cache folder; without it features are computed every time. */
  cacheDir?: string;
  /** Called after each image with the number done so far. */
  onProgress?: (done: number, total: number, last: ExtractionProgress<unknown>) => void;
  /** Reports replaced cache entries and similar events. */
  log?: (line: string) => void;
  /** The view of each image to extract (views.ts); the image itself by default. Cached per view. */
  view?: FeatureView;
  /** Stops before the next image once aborted (the image being computed is finished first). */
  signal?: AbortSignal;
}

/** Creates the cache for a backbone's feature configuration. */
export function featureCacheFor(backbone: Backbone, cacheDir: string): FeatureCache {
  return new FeatureCache(cacheDir, featureConfigKey(backbone.descriptor));
}

/**
 * Features of every image in order. While the backbone runs on one image, the next one is read,
 * looked up in the cache and, when it is not there, decoded (sharp decodes in libuv's threads).
 */
export async function* extractFeatures<T extends { imagePath: string }>(
  items: readonly T[],
  backbone: Backbone,
  options: ExtractOptions = {},
): AsyncGenerator<ExtractedFeatures<T>> {
  for await (const { value, ...progress } of extractEach(items, backbone, options, halfMapToFeatureMap, (map) => map)) {
    yield { ...progress, features: value };
  }
}

/** Some cells of one image's feature map, as {@link extractFeatureCells} yields them. */
export interface ExtractedCells<T> extends ExtractionProgress<T> {
  /** [cells.length, channels]: the feature vector of each picked cell, in the order picked. */
  rows: Float32Array;
  /** The picked cell indices (row-major on the feature grid). */
  cells: readonly number[];
  channels: number;
}

/**
 * Like {@link extractFeatures}, but yields only the cells `pickCells` chooses from each map (called
 * once per image, in order, with the map's cell count). A cached map is read in float16 and only the
 * picked cells are converted: sampling 10% of CamVid's cells this way skips 90% of the conversion.
 */
export async function* extractFeatureCells<T extends { imagePath: string }>(
  items: readonly T[],
  backbone: Backbone,
  pickCells: (cellCount: number) => readonly number[],
  options: ExtractOptions = {},
): AsyncGenerator<ExtractedCells<T>> {
  const gather = (map: { channels: number; height: number; width: number }, values: Float32Array | Uint16Array) => {
    const cells = pickCells(map.height * map.width);
    return { rows: gatherCells(values, map.channels, map.height * map.width, cells), cells, channels: map.channels };
  };
  const fromCache = (map: HalfFeatureMap) => gather(map, map.half);
  const fromComputed = (map: FeatureMap) => gather(map, map.data);
  for await (const { value, ...progress } of extractEach(items, backbone, options, fromCache, fromComputed)) yield { ...progress, ...value };
}

/**
 * The channel vectors of some cells of a [channels, cellCount] map as rows [cells.length, channels];
 * half bits are converted exactly.
 */
export function gatherCells(values: Float32Array | Uint16Array, channels: number, cellCount: number, cells: readonly number[]): Float32Array {
  const rows = new Float32Array(cells.length * channels);
  // Channel by channel: each plane is read forwards (cells are usually sorted), rows written with a stride.
  if (values instanceof Uint16Array) {
    for (let c = 0; c < channels; c++) {
      const plane = c * cellCount;
      for (let j = 0; j < cells.length; j++) rows[j * channels + c] = halfToFloatTable[values[plane + cells[j]]];
    }
  } else {
    for (let c = 0; c < channels; c++) {
      const plane = c * cellCount;
      for (let j = 0; j < cells.length; j++) rows[j * channels + c] = values[plane + cells[j]];
    }
  }
  return rows;
}

/**
 * The loop behind both generators: each image's map from the cache (`fromCache`, still in float16)
 * or from the backbone (`fromComputed`; rounded to float16 when there is a cache, so that a first run
 * and a cached rerun see the same numbers and produce the same results).
 */
async function* extractEach<T extends { imagePath: string }, R>(
  items: readonly T[],
  backbone: Backbone,
  options: ExtractOptions,
  fromCache: (map: HalfFeatureMap) => R,
  fromComputed: (map: FeatureMap) => R,
): AsyncGenerator<ExtractionProgress<T> & { value: R }> {
  const cache = options.cacheDir ? featureCacheFor(backbone, options.cacheDir) : undefined;
  const view = options.view ?? IDENTITY_VIEW;
  const prepare = async (item: T) => {
    const bytes = await readFile(item.imagePath);
    const hash = viewCacheKey(imageContentHash(bytes), view);
    const lookup = cache ? await cache.getHalf(hash) : ({ status: 'miss' } as const);
    const image = lookup.status === 'hit' ? undefined : await backbone.decodeView(bytes, view, item.imagePath);
    return { item, bytes, hash, lookup, image };
  };
  let next = items.length > 0 ? prepare(items[0]) : undefined;
  // Cache writes run behind the next image's inference; one at a time, all awaited before returning.
  let pendingWrite: Promise<void> = Promise.resolve();
  for (let i = 0; i < items.length; i++) {
    if (options.signal?.aborted) {
      // Nothing of this loop may still be running when the caller learns it stopped.
      await next?.catch(() => undefined);
      await pendingWrite.catch(() => undefined);
      options.signal.throwIfAborted();
    }
    const current = await next!;
    next = i + 1 < items.length ? prepare(items[i + 1]) : undefined;
    // Keep a rejected prefetch from surfacing as an unhandled rejection; it is awaited next turn.
    next?.catch(() => undefined);
    const size = await readImageSize(current.bytes, current.item.imagePath);
    const progress = { item: current.item, imageWidth: size.width, imageHeight: size.height };
    let result: ExtractionProgress<T> & { value: R };
    if (current.lookup.status === 'hit') {
      result = { ...progress, source: 'hit', value: fromCache(current.lookup.features) };
    } else {
      if (current.lookup.status === 'corrupt') {
        options.log?.(`feature cache: entry for ${current.item.imagePath} is damaged (${current.lookup.reason}); recomputing`);
      }
      const computed = await backbone.extractDecoded(current.image!, { roundToFloat16: cache !== undefined });
      if (cache) {
        await pendingWrite;
        pendingWrite = cache.put(current.hash, computed);
        pendingWrite.catch(() => undefined); // surfaced when awaited
      }
      // The half bits go to the cache only; callers that keep many maps should not hold them too.
      const features = { channels: computed.channels, height: computed.height, width: computed.width, data: computed.data };
      result = { ...progress, source: current.lookup.status === 'corrupt' ? 'recomputed' : 'computed', value: fromComputed(features) };
    }
    options.onProgress?.(i + 1, items.length, result);
    yield result;
  }
  await pendingWrite;
}
