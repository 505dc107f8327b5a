// Image in, mask out: the one pipeline behind `POST /segment` and `fuss segment --model`. Decode,
// backbone features, head codes, nearest centroid per cell, upsampling to the image size (or the
// dense CRF on the image), then the mask as a PNG of class ids, JSON, or a colour overlay with an
// optional legend of class names.

import sharp from 'sharp';
import type { Backbone } from '../backbone/backbone.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import type { TrainingEngine } from '../engines/engine.js';
import { FussError } from '../errors.js';
import { assignPixels, cosineScores } from '../evaluation/evaluate.js';
import { decodeRgb, inputSizeFor, type RgbImage } from '../image/image.js';
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

/** Most classes a PNG of 8-bit class ids can hold. */
export const PNG_MAX_CLASSES = 256;

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
  width: number;
  height: number;
  /** [height * width] class id per pixel, row-major. */
  mask: Int32Array;
  classes: ClassShare[];
}

/**
 * Segments one image with a model and encodes the mask, which has the image's size (after EXIF
 * orientation). See {@link MaskFormat}.
 *
 * @throws IncompatibleModelError when the model was trained on another backbone or feature setting
 * @throws DataError when the image cannot be decoded
 * @throws ClassLabelError when `classes` break the rules of `validateClassLabels`
 * @throws FussError (400) for format png with more than {@link PNG_MAX_CLASSES} classes
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
  if (format === 'png' && model.k > PNG_MAX_CLASSES) {
    throw new FussError(`a PNG of class ids holds at most ${PNG_MAX_CLASSES} classes and this model has ${model.k}; ask for format json`, { status: 400, type: 'bad-format' });
  }
  const labels = validateClassLabels(input.classes ?? [], model.k);

  // Decoded at its own size (EXIF orientation applied), which is the mask's; when the backbone takes
  // the image at that size too, the same pixels feed it.
  const rgb = await decodeRgb(input.image, { name });
  const { width, height } = rgb;
  const target = inputSizeFor(descriptor.inputSize, width, height);
  const features = target.width === width && target.height === height ? await backbone.extractDecoded(rgb) : await backbone.extract(input.image, name);
  const codes = await headCodeFunction(engine, model.head, model.channels, model.codeDim)(features);
  const centroidsUnit = normalizeRows(model.centroids, model.k, model.codeDim);
  const mask =
    refine === 'crf'
      ? refineWithCrf(rgb, cosineScores(codes, centroidsUnit, model.k), model.k, codes.height, codes.width, input.crf)
      : assignPixels(codes, centroidsUnit, model.k, width, height);

  const classes = classShares(mask, model.k, labels);
  const result = { width, height, mask, classes };
  if (format === 'json') {
    return { ...result, contentType: 'application/json', body: { width, height, k: model.k, mask: Array.from(mask), classes } };
  }
  if (format === 'png') return { ...result, contentType: 'image/png', body: await encodeClassIdPng(mask, width, height) };
  return { ...result, contentType: 'image/png', body: await renderOverlay(rgb, mask, classes, { legend: input.legend ?? false }) };
}

/** Every class with its pixel count and share of `mask`. */
export function classShares(mask: Int32Array, k: number, labels: readonly ClassLabel[] = []): ClassShare[] {
  const counts = new Float64Array(k);
  for (let p = 0; p < mask.length; p++) counts[mask[p]]++;
  return classTable(k, labels).map((entry) => ({ ...entry, pixels: counts[entry.id], share: mask.length > 0 ? counts[entry.id] / mask.length : 0 }));
}

/** A single-channel 8-bit PNG whose pixel values are the class ids (ids must be < 256). */
export async function encodeClassIdPng(mask: Int32Array, width: number, height: number): Promise<Uint8Array> {
  const ids = Uint8Array.from(mask);
  return sharp(ids, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toBuffer();
}

/** Legend layout, in pixels. */
const LEGEND = { width: 240, row: 22, swatch: 16, margin: 12, font: 13, maxRows: 40 } as const;

/**
 * The image with each pixel's class colour blended over it ({@link OVERLAY_ALPHA}), as a PNG of the
 * image's size; with `legend`, widened by a panel listing the classes present, largest share first.
 */
export async function renderOverlay(image: RgbImage, mask: Int32Array, classes: readonly ClassShare[], options: { legend: boolean }): Promise<Uint8Array> {
  const { width, height } = image;
  const palette = classes.map((c) => parseColour(c.colour));
  const out = Buffer.alloc(width * height * 3);
  for (let p = 0; p < mask.length; p++) {
    const colour = palette[mask[p]];
    for (let c = 0; c < 3; c++) out[p * 3 + c] = Math.round((1 - OVERLAY_ALPHA) * image.data[p * 3 + c] + OVERLAY_ALPHA * colour[c]);
  }
  const overlay = sharp(out, { raw: { width, height, channels: 3 } });
  if (!options.legend) return overlay.png().toBuffer();
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
      { input: await overlay.png().toBuffer(), left: 0, top: 0 },
      { input: Buffer.from(svg), left: 0, top: 0 },
    ])
    .png()
    .toBuffer();
}

function escapeXml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);
}
