// Image in, mask out: the one pipeline behind `POST /segment` and `fuss segment --model`. Decode,
// backbone features, head codes, nearest centroid per cell, upsampling to the image size (or the
// dense CRF on the image), then the mask as a PNG of class ids, JSON, or a colour overlay with an
// optional legend of class names.
//
// With `maxSide` (the server's FUSS_SEGMENT_MAX_SIDE) the image is first brought down to a working
// size whose longest side is at most maxSide; the mask is computed there and brought back to the
// image's own size with nearest neighbours by libvips (sharp), which streams: memory follows the
// working size, not the image.

import sharp, { type Sharp } from 'sharp';
import type { Backbone } from '../backbone/backbone.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import type { TrainingEngine } from '../engines/engine.js';
import { DataError } from '../errors.js';
import { assignPixels, cosineScores } from '../evaluation/evaluate.js';
import { inputSizeFor, type RgbImage } from '../image/image.js';
import { IncompatibleModelError, type SegmentationModel } from '../io/model-file.js';
import { normalizeRows } from '../math/vectors.js';
import { refineWithCrf, type CrfRefineOptions } from '../refine/crf-refine.js';
import { headCodeFunction } from '../training/head-codes.js';
import { classTable, parseColour, validateClassLabels, type ClassLabel } from './classes.js';

/** png: 8-bit class ids; json: ids as an array with the class table; overlay: colours over the image. */
export type MaskFormat = 'png' | 'json' | 'overlay';
export const MASK_FORMATS: readonly MaskFormat[] = ['png', 'json', 'overlay'];

/** Mask refinement: none (nearest centroid, bilinear scores) or the dense CRF. */
export type Refinement = 'none' | 'crf';

/** Most classes a PNG of 8-bit class ids can hold; beyond, the PNG has 16-bit ids. */
export const PNG_8BIT_CLASSES = 256;

/** Weight of the class colour over the image in an overlay. */
const OVERLAY_ALPHA = 0.55;

export interface SegmentImageInput {
  backbone: Backbone;
  /** Runs the head (codes); any training engine. */
  engine: TrainingEngine;
  /** The model; its backbone sha256 and feature key must be the backbone's. */
  model: SegmentationModel;
  /** The encoded image (JPEG, PNG, or anything sharp decodes). */
  image: Uint8Array;
  /** Default `png`. */
  format?: MaskFormat;
  /** Default `none`. */
  refine?: Refinement;
  crf?: CrfRefineOptions;
  /** Names and colours of some or all classes (checked against the model's K). */
  classes?: readonly ClassLabel[];
  /** Overlay only: a panel on the right listing the classes present, largest first. */
  legend?: boolean;
  /** The image in error messages. Default "the image". */
  name?: string;
  /** Longest side of the working size (default: none, the image's own size). */
  maxSide?: number;
  /** Largest image decoded, pixels (sharp's own limit is 268 MP). */
  maxPixels?: number;
}

/** A class of the model with its share of the mask. */
export interface ClassShare {
  id: number;
  name: string;
  /** `#rrggbb`, as drawn in the overlay. */
  colour: string;
  pixels: number;
  /** pixels / all pixels, in [0, 1]. */
  share: number;
}

/** The JSON form of a mask. */
export interface MaskJson {
  width: number;
  height: number;
  k: number;
  /** [height * width] class id per pixel, row-major. */
  mask: number[];
  /** Every class 0..k-1, with its share of this mask. */
  classes: ClassShare[];
}

export interface SegmentImageResult {
  contentType: 'image/png' | 'application/json';
  /** PNG bytes, or the JSON object (format json). */
  body: Uint8Array | MaskJson;
  /** The image's size (after EXIF orientation), which every output has. */
  width: number;
  height: number;
  /** The working size the mask was computed at (the image's size without `maxSide`). */
  workWidth: number;
  workHeight: number;
  /** [workHeight * workWidth] class id per pixel, row-major. */
  mask: Int32Array;
  /** Every class with its share of the mask (counted at the working size). */
  classes: ClassShare[];
}

/** The working size: the image scaled down (never up) so its longest side is at most `maxSide`. */
export function workingSize(width: number, height: number, maxSide = Number.POSITIVE_INFINITY): { width: number; height: number } {
  const scale = Math.min(1, maxSide / Math.max(width, height));
  return { width: Math.max(1, Math.round(width * scale)), height: Math.max(1, Math.round(height * scale)) };
}

/**
 * Segments one image with a model and encodes the mask, which has the image's size (after EXIF
 * orientation). See {@link MaskFormat}.
 *
 * @throws IncompatibleModelError when the model was trained on another backbone or feature setting
 * @throws DataError when the image cannot be decoded
 * @throws ClassLabelError when `classes` break the rules of `validateClassLabels`
 */
export async function segmentImage(input: SegmentImageInput): Promise<SegmentImageResult> {
  const { backbone, engine, model } = input;
  const format = input.format ?? 'png';
  const refine = input.refine ?? 'none';
  const name = input.name ?? 'the image';
  const descriptor = backbone.descriptor;
  if (model.backbone.sha256 !== descriptor.sha256 || model.backbone.featureKey !== featureConfigKey(descriptor)) {
    throw new IncompatibleModelError(`the model was trained on backbone ${model.backbone.id || '?'} (sha256 ${model.backbone.sha256.slice(0, 12)}...), not on ${descriptor.id} (${descriptor.sha256.slice(0, 12)}...) with these feature settings`);
  }
  const labels = validateClassLabels(input.classes ?? [], model.k);
  const decodeFailure = (err: unknown): never => {
    throw new DataError(`cannot read image ${name}: ${String((err as Error).message).split('\n')[0]}`, { cause: err });
  };
  const source = () => sharp(input.image, { limitInputPixels: input.maxPixels ?? true, failOn: 'error' });
  const meta = await source().metadata().catch(decodeFailure);
  if (!meta.width || !meta.height) throw new DataError(`cannot read image ${name}: no width or height`);
  // EXIF orientations 5-8 turn the image by 90 degrees: the mask follows the image as it is shown.
  const turned = (meta.orientation ?? 1) >= 5;
  const width = turned ? meta.height : meta.width;
  const height = turned ? meta.width : meta.height;
  const work = workingSize(width, height, input.maxSide);
  const decodeAt = async (size: { width: number; height: number }): Promise<RgbImage> => {
    let pipeline = source().rotate().removeAlpha().toColourspace('srgb');
    if (size.width !== width || size.height !== height) pipeline = pipeline.resize(size.width, size.height, { fit: 'fill', kernel: 'linear' });
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true }).catch(decodeFailure);
    if (info.channels !== 3) throw new DataError(`cannot read image ${name}: decoded to ${info.channels} channels`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  };
  // The working image; the backbone takes it as it is when its input size policy allows.
  const rgb = await decodeAt(work);
  const target = inputSizeFor(descriptor.inputSize, work.width, work.height);
  const features = await backbone.extractDecoded(target.width === work.width && target.height === work.height ? rgb : await decodeAt(target));
  const codes = await headCodeFunction(engine, model.head, model.channels, model.codeDim)(features);
  const centroidsUnit = normalizeRows(model.centroids, model.k, model.codeDim);
  const mask =
    refine === 'crf'
      ? refineWithCrf(rgb, cosineScores(codes, centroidsUnit, model.k), model.k, codes.height, codes.width, input.crf)
      : assignPixels(codes, centroidsUnit, model.k, work.width, work.height);

  const classes = classShares(mask, model.k, labels);
  const result = { width, height, workWidth: work.width, workHeight: work.height, mask, classes };
  const full = { width, height };
  if (format === 'json') {
    const ids = work.width === width && work.height === height ? mask : await upscaleIds(mask, model.k, work, full);
    return { ...result, contentType: 'application/json', body: { width, height, k: model.k, mask: Array.from(ids), classes } };
  }
  if (format === 'png') return { ...result, contentType: 'image/png', body: await encodeClassIdPng(mask, model.k, work, full) };
  const underneath: OverlaySource = work.width === width && work.height === height ? { kind: 'decoded', rgb } : { kind: 'pipeline', image: source().rotate().removeAlpha().toColourspace('srgb') };
  return { ...result, contentType: 'image/png', body: await renderOverlay(underneath, mask, classes, work, full, { legend: input.legend ?? false }) };
}

/** The ids as a single-channel raw image (8-bit for up to 256 classes, else 16-bit), at `size`. */
function idImage(mask: Int32Array, k: number, size: { width: number; height: number }) {
  const wide = k > PNG_8BIT_CLASSES;
  return { image: sharp(wide ? Uint16Array.from(mask) : Uint8Array.from(mask), { raw: { width: size.width, height: size.height, channels: 1 } }), wide };
}

/** The working-size ids brought to the full size with nearest neighbours. */
async function upscaleIds(mask: Int32Array, k: number, work: { width: number; height: number }, full: { width: number; height: number }): Promise<Uint8Array | Uint16Array> {
  const { image, wide } = idImage(mask, k, work);
  const data = await image.resize(full.width, full.height, { fit: 'fill', kernel: 'nearest' }).toColourspace(wide ? 'grey16' : 'b-w').raw({ depth: wide ? 'ushort' : 'uchar' }).toBuffer();
  return wide ? new Uint16Array(data.buffer, data.byteOffset, data.byteLength / 2) : new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

/** Every class with its pixel count and share of `mask`. */
export function classShares(mask: Int32Array, k: number, labels: readonly ClassLabel[] = []): ClassShare[] {
  const counts = new Float64Array(k);
  for (let p = 0; p < mask.length; p++) counts[mask[p]]++;
  return classTable(k, labels).map((entry) => ({ ...entry, pixels: counts[entry.id], share: mask.length > 0 ? counts[entry.id] / mask.length : 0 }));
}

/**
 * A single-channel PNG whose pixel values are the class ids: 8-bit for up to 256 classes, 16-bit
 * beyond. `mask` is at `work` size; the PNG at `full` size (nearest neighbours; default the same).
 */
export async function encodeClassIdPng(mask: Int32Array, k: number, work: { width: number; height: number }, full = work): Promise<Uint8Array> {
  const { image, wide } = idImage(mask, k, work);
  const sized = full.width === work.width && full.height === work.height ? image : image.resize(full.width, full.height, { fit: 'fill', kernel: 'nearest' });
  return sized.toColourspace(wide ? 'grey16' : 'b-w').png({ compressionLevel: 3 }).toBuffer();
}

/** What an overlay is drawn over: the decoded image (mask at its size), or the full image to decode. */
export type OverlaySource = { kind: 'decoded'; rgb: RgbImage } | { kind: 'pipeline'; image: Sharp };

/** Legend layout, in pixels. */
const LEGEND = { width: 240, row: 22, swatch: 16, margin: 12, font: 13, maxRows: 40 } as const;

/**
 * The image with each pixel's class colour blended over it ({@link OVERLAY_ALPHA}), as a PNG of the
 * image's size; with `legend`, widened by a panel listing the classes present, largest share first.
 * `underneath` is the decoded image when the mask has its size, else a sharp pipeline of the full
 * image (the colour layer is brought to it with nearest neighbours and composed by libvips).
 */
export async function renderOverlay(
  underneath: OverlaySource,
  mask: Int32Array,
  classes: readonly ClassShare[],
  work: { width: number; height: number },
  full: { width: number; height: number },
  options: { legend: boolean },
): Promise<Uint8Array> {
  const { width, height } = full;
  const palette = classes.map((c) => parseColour(c.colour));
  let overlay: Sharp;
  if (underneath.kind === 'decoded') {
    const { rgb } = underneath;
    const out = Buffer.alloc(width * height * 3);
    for (let p = 0; p < mask.length; p++) {
      const colour = palette[mask[p]];
      for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round((1 - OVERLAY_ALPHA) * rgb.data[p * 3 + c] + OVERLAY_ALPHA * colour[c]);
    }
    overlay = sharp(out, { raw: { width, height, channels: 3 } });
  } else {
    const layer = Buffer.alloc(work.width * work.height * 4);
    const alpha = Math.round(OVERLAY_ALPHA * 255);
    for (let p = 0; p < mask.length; p++) {
      const colour = palette[mask[p]];
      layer[p * 4] = colour[0];
      layer[p * 4 + 1] = colour[1];
      layer[p * 4 + 2] = colour[2];
      layer[p * 4 + 3] = alpha;
    }
    const layerPng = await sharp(layer, { raw: { width: work.width, height: work.height, channels: 4 } }).resize(width, height, { fit: 'fill', kernel: 'nearest' }).png({ compressionLevel: 1 }).toBuffer();
    overlay = sharp(await underneath.image.composite([{ input: layerPng, blend: 'over' }]).png({ compressionLevel: 1 }).toBuffer());
  }
  if (!options.legend) return overlay.png({ compressionLevel: 3 }).toBuffer();
  const present = classes.filter((c) => c.pixels > 0).sort((a, b) => b.pixels - a.pixels || a.id - b.id);
  const shown = present.slice(0, LEGEND.maxRows);
  const rows = shown.length + (present.length > shown.length ? 1 : 0);
  const canvasHeight = Math.max(height, 2 * LEGEND.margin + rows * LEGEND.row);
  const left = width + LEGEND.margin;
  const lines = shown.map((c, i) => {
    const top = LEGEND.margin + i * LEGEND.row;
    const label = `${c.id}  ${c.name}  ${(c.share * 100).toFixed(1)}%`;
    return (
      `<rect x="${left}" y="${top}" width="${LEGEND.swatch}" height="${LEGEND.swatch}" fill="${c.colour}" stroke="#ffffff" stroke-width="1"/>` +
      `<text x="${left + LEGEND.swatch + 8}" y="${top + LEGEND.swatch - 3}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${LEGEND.font}" fill="#f0f0f0">${escapeXml(label)}</text>`
    );
  });
  if (present.length > shown.length) {
    lines.push(`<text x="${left}" y="${LEGEND.margin + shown.length * LEGEND.row + LEGEND.swatch - 3}" font-family="DejaVu Sans, Liberation Sans, Arial, sans-serif" font-size="${LEGEND.font}" fill="#f0f0f0">and ${present.length - shown.length} more</text>`);
  }
  const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${width + LEGEND.width}" height="${canvasHeight}">${lines.join('')}</svg>`;
  return sharp({ create: { width: width + LEGEND.width, height: canvasHeight, channels: 3, background: '#202020' } })
    .composite([
      { input: await overlay.png({ compressionLevel: 1 }).toBuffer(), left: 0, top: 0 },
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .png({ compressionLevel: 3 })
    .toBuffer();
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
