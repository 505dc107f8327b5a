// Augmented views of a training image, made before the backbone and cached like the image itself
// (the feature cache key includes the view): the horizontal mirror and five crops (four corners and
// the centre, as the paper five-crops Cityscapes). A participant trains on every view of each of its
// images; evaluation and segmentation always use the image itself.
//
// Augmentation text: `none`, `flip`, `crops:F` (five crops of F of each side, 0 < F < 1) or
// `flip,crops:F` (the image and its five crops, each also mirrored: 12 views).

import { ConfigError } from '../errors.js';
import type { RgbImage } from '../image/image.js';

export type CropAnchor = 'tl' | 'tr' | 'bl' | 'br' | 'c';
const ANCHORS: readonly CropAnchor[] = ['tl', 'tr', 'bl', 'br', 'c'];

export interface FeatureView {
  /** `identity` for the image itself; otherwise part of the cache key, e.g. `flip`, `crop0.8-tl-flip`. */
  id: string;
  /** Mirror left-right (after the crop). */
  flip: boolean;
  /** A crop of `fraction` of each side at `anchor`. */
  crop?: { fraction: number; anchor: CropAnchor };
}

export const IDENTITY_VIEW: FeatureView = Object.freeze({ id: 'identity', flip: false });

export const AUGMENTATION_HELP = 'none, flip, crops:F (five crops of F of each side) or flip,crops:F';

/** The pattern of an augmentation's text form (API schemas validate it before parseAugmentation). */
export const AUGMENTATION_PATTERN = '^(none|flip|crops:0?\\.[0-9]+|flip,crops:0?\\.[0-9]+|crops:0?\\.[0-9]+,flip)$';

/**
 * The views of an augmentation text, the image itself first.
 *
 * @throws ConfigError naming the accepted forms, or a crop fraction outside (0, 1)
 */
export function parseAugmentation(text: string): FeatureView[] {
  const spec = text.trim();
  if (spec === 'none') return [IDENTITY_VIEW];
  const parts = spec.split(',').map((p) => p.trim());
  let flip = false;
  let fraction: number | undefined;
  for (const part of parts) {
    if (part === 'flip' && !flip) {
      flip = true;
    } else if (part.startsWith('crops:') && fraction === undefined) {
      fraction = Number(part.slice('crops:'.length));
      if (!(fraction > 0 && fraction < 1)) throw new ConfigError(`augmentation "${text}": the crop fraction must be between 0 and 1`);
    } else {
      throw new ConfigError(`unknown augmentation "${text}"; choose ${AUGMENTATION_HELP}`);
    }
  }
  const views: FeatureView[] = [];
  for (const mirrored of flip ? [false, true] : [false]) {
    for (const anchor of fraction === undefined ? [undefined] : [undefined, ...ANCHORS]) {
      if (!mirrored && anchor === undefined) {
        views.push(IDENTITY_VIEW);
        continue;
      }
      const id = [anchor ? `crop${fraction}-${anchor}` : '', mirrored ? 'flip' : ''].filter(Boolean).join('-');
      views.push({ id, flip: mirrored, ...(anchor ? { crop: { fraction: fraction!, anchor } } : {}) });
    }
  }
  return views;
}

/** The canonical text of an augmentation (what a federation stores). */
export function formatAugmentation(text: string): string {
  const views = parseAugmentation(text);
  const flip = views.some((v) => v.flip);
  const crop = views.find((v) => v.crop)?.crop;
  return [flip ? 'flip' : '', crop ? `crops:${crop.fraction}` : ''].filter(Boolean).join(',') || 'none';
}

/** The pixel box of a view's crop in a width x height image (the whole image without a crop). */
export function cropBox(view: FeatureView, width: number, height: number): { left: number; top: number; width: number; height: number } {
  if (!view.crop) return { left: 0, top: 0, width, height };
  const w = Math.max(1, Math.round(width * view.crop.fraction));
  const h = Math.max(1, Math.round(height * view.crop.fraction));
  const right = width - w;
  const bottom = height - h;
  switch (view.crop.anchor) {
    case 'tl':
      return { left: 0, top: 0, width: w, height: h };
    case 'tr':
      return { left: right, top: 0, width: w, height: h };
    case 'bl':
      return { left: 0, top: bottom, width: w, height: h };
    case 'br':
      return { left: right, top: bottom, width: w, height: h };
    case 'c':
      return { left: Math.floor(right / 2), top: Math.floor(bottom / 2), width: w, height: h };
  }
}

/** The view of a decoded image: its crop, mirrored when the view flips. Returns a new image. */
export function applyView(image: RgbImage, view: FeatureView): RgbImage {
  const box = cropBox(view, image.width, image.height);
  const data = new Uint8Array(box.width * box.height * 3);
  for (let y = 0; y < box.height; y++) {
    for (let x = 0; x < box.width; x++) {
      const source = ((box.top + y) * image.width + box.left + (view.flip ? box.width - 1 - x : x)) * 3;
      const target = (y * box.width + x) * 3;
      data[target] = image.data[source];
      data[target + 1] = image.data[source + 1];
      data[target + 2] = image.data[source + 2];
    }
  }
  return { width: box.width, height: box.height, data };
}

/** The feature cache key of an image's view: the image's sha256, suffixed with the view for an augmented one. */
export function viewCacheKey(imageSha256: string, view: FeatureView): string {
  return view.id === IDENTITY_VIEW.id ? imageSha256 : `${imageSha256}-${view.id}`;
}
