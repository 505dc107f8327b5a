// Feature extraction over a list of images with the on-disk cache: each image's backbone features are
// computed once; later runs read them back. Yields one image at a time so memory stays flat.

import { readFile } from 'node:fs/promises';
import type { Backbone, FeatureMap } from '../backbone/backbone.js';
import { FeatureCache, imageContentHash } from '../io/feature-cache.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import { readImageSize } from '../image/image.js';
import { float16ToFloat32, float32ToFloat16 } from '../io/float16.js';
import { IDENTITY_VIEW, viewCacheKey, type FeatureView } from './views.js';

export interface ExtractedFeatures<T> {
  item: T;
  features: FeatureMap;
  /** Size of the source image (labels are compared at this size). */
  imageWidth: number;
  imageHeight: number;
  /** `hit`: read from the cache; `computed`: backbone ran; `recomputed`: a damaged cache entry was replaced. */
  source: 'hit' | 'computed' | 'recomputed';
}

export interface ExtractOptions {
  /** Cache folder; without it features are computed every time. */
  cacheDir?: string;
  /** Called after each image with the number done so far. */
  onProgress?: (done: number, total: number, last: ExtractedFeatures<unknown>) => void;
  /** Reports replaced cache entries and similar events. */
  log?: (line: string) => void;
  /** The view of each image to extract (views.ts); the image itself by default. Cached per view. */
  view?: FeatureView;
}

/** Creates the cache for a backbone's feature configuration. */
export function featureCacheFor(backbone: Backbone, cacheDir: string): FeatureCache {
  return new FeatureCache(cacheDir, featureConfigKey(backbone.descriptor));
}

/**
 * Features of every image in order. While the backbone runs on one image, the next one is read and
 * looked up in the cache.
 */
export async function* extractFeatures<T extends { imagePath: string }>(
  items: readonly T[],
  backbone: Backbone,
  options: ExtractOptions = {},
): AsyncGenerator<ExtractedFeatures<T>> {
  const cache = options.cacheDir ? featureCacheFor(backbone, options.cacheDir) : undefined;
  const view = options.view ?? IDENTITY_VIEW;
  const prepare = async (item: T) => {
    const bytes = await readFile(item.imagePath);
    const hash = viewCacheKey(imageContentHash(bytes), view);
    const lookup = cache ? await cache.get(hash) : ({ status: 'miss' } as const);
    return { item, bytes, hash, lookup };
  };
  let next = items.length > 0 ? prepare(items[0]) : undefined;
  // Cache writes run behind the next image's inference; one at a time, all awaited before returning.
  let pendingWrite: Promise<void> = Promise.resolve();
  for (let i = 0; i < items.length; i++) {
    const current = await next!;
    next = i + 1 < items.length ? prepare(items[i + 1]) : undefined;
    // Keep a rejected prefetch from surfacing as an unhandled rejection; it is awaited next turn.
    next?.catch(() => undefined);
    const size = await readImageSize(current.bytes, current.item.imagePath);
    let result: ExtractedFeatures<T>;
    if (current.lookup.status === 'hit') {
      result = { item: current.item, features: current.lookup.features, imageWidth: size.width, imageHeight: size.height, source: 'hit' };
    } else {
      if (current.lookup.status === 'corrupt') {
        options.log?.(`feature cache: entry for ${current.item.imagePath} is damaged (${current.lookup.reason}); recomputing`);
      }
      let features = await backbone.extractView(current.bytes, view, current.item.imagePath);
      if (cache) {
        // Yield what the cache will hold (float16 precision), so a first run and a cached rerun see
        // the same numbers and produce the same results.
        features = { ...features, data: float16ToFloat32(float32ToFloat16(features.data)) };
        await pendingWrite;
        pendingWrite = cache.put(current.hash, features);
        pendingWrite.catch(() => undefined); // surfaced when awaited
      }
      const source = current.lookup.status === 'corrupt' ? 'recomputed' : 'computed';
      result = { item: current.item, features, imageWidth: size.width, imageHeight: size.height, source };
    }
    options.onProgress?.(i + 1, items.length, result);
    yield result;
  }
  await pendingWrite;
}
