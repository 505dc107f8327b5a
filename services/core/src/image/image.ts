// Image decoding, resizing and ImageNet-style normalisation (sharp). The only image I/O in core.

import sharp from 'sharp';
import { DataError } from '../errors.js';

/** An 8-bit RGB image, interleaved HWC. */
export interface RgbImage {
  width: number;
  height: number;
  /** [height, width, 3] */
  data: Uint8Array;
}

/**
 * How an image is sized before it enters the backbone.
 * - `native`: keep the image size, rounded to the nearest multiple of `multipleOf` (at least one);
 * - `fixed`: resize to exactly width x height (aspect ratio not kept, like a ViT at 224 x 224);
 * - `shortSide`: scale so the shorter side is `size`, then round both sides to `multipleOf`.
 */
export type InputSizePolicy =
  | { kind: 'native'; multipleOf: number }
  | { kind: 'fixed'; width: number; height: number }
  | { kind: 'shortSide'; size: number; multipleOf: number };

function roundToMultiple(value: number, multiple: number): number {
  return Math.max(multiple, Math.round(value / multiple) * multiple);
}

/** The backbone input size [width, height] for an image of the given size under a policy. */
export function inputSizeFor(policy: InputSizePolicy, width: number, height: number): { width: number; height: number } {
  switch (policy.kind) {
    case 'native':
      return { width: roundToMultiple(width, policy.multipleOf), height: roundToMultiple(height, policy.multipleOf) };
    case 'fixed':
      return { width: policy.width, height: policy.height };
    case 'shortSide': {
      const scale = policy.size / Math.min(width, height);
      return {
        width: roundToMultiple(width * scale, policy.multipleOf),
        height: roundToMultiple(height * scale, policy.multipleOf),
      };
    }
  }
}

/** Parses `native`, `native/8`, `224x224` (width x height) or `short:320/8` into a policy. */
export function parseInputSizePolicy(text: string, defaultMultiple: number): InputSizePolicy {
  const native = /^native(?:\/(\d+))?$/.exec(text);
  if (native) return { kind: 'native', multipleOf: native[1] ? Number(native[1]) : defaultMultiple };
  const fixed = /^(\d+)x(\d+)$/.exec(text);
  if (fixed) return { kind: 'fixed', width: Number(fixed[1]), height: Number(fixed[2]) };
  const short = /^short:(\d+)(?:\/(\d+))?$/.exec(text);
  if (short) return { kind: 'shortSide', size: Number(short[1]), multipleOf: short[2] ? Number(short[2]) : defaultMultiple };
  throw new DataError(`input size "${text}" is not one of native[/M], WxH, short:S[/M]`);
}

/** Reads width and height without decoding pixels; names the file on failure. */
export async function readImageSize(source: string | Uint8Array, name?: string): Promise<{ width: number; height: number }> {
  try {
    const meta = await sharp(source).metadata();
    if (!meta.width || !meta.height) throw new Error('no width or height');
    return { width: meta.width, height: meta.height };
  } catch (err) {
    throw new DataError(`cannot read image ${name ?? describeSource(source)}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * Decodes an image file or buffer to 8-bit RGB (alpha removed, EXIF orientation applied), optionally
 * resized with a bilinear-quality filter to exactly `resize`.
 */
export async function decodeRgb(
  source: string | Uint8Array,
  options: { resize?: { width: number; height: number }; name?: string } = {},
): Promise<RgbImage> {
  try {
    let pipeline = sharp(source).rotate().removeAlpha().toColourspace('srgb');
    if (options.resize) {
      pipeline = pipeline.resize(options.resize.width, options.resize.height, { fit: 'fill', kernel: 'linear' });
    }
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`decoded to ${info.channels} channels, expected 3`);
    return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
  } catch (err) {
    throw new DataError(`cannot read image ${options.name ?? describeSource(source)}: ${(err as Error).message}`, { cause: err });
  }
}

/** Resizes a decoded image to exactly `size` with the filter {@link decodeRgb} uses. */
export async function resizeRgb(image: RgbImage, size: { width: number; height: number }): Promise<RgbImage> {
  const { data, info } = await sharp(image.data, { raw: { width: image.width, height: image.height, channels: 3 } })
    .resize(size.width, size.height, { fit: 'fill', kernel: 'linear' })
    .raw()
    .toBuffer({ resolveWithObject: true });
  return { width: info.width, height: info.height, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}

/**
 * Converts HWC uint8 RGB into a CHW float32 tensor: (x / 255 - mean[c]) / std[c].
 * @returns [3, height, width]
 */
export function normalizeToChw(image: RgbImage, mean: readonly number[], std: readonly number[]): Float32Array {
  const plane = image.width * image.height;
  const out = new Float32Array(3 * plane);
  const src = image.data;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * std[c]);
    const offset = mean[c] / std[c];
    const base = c * plane;
    for (let p = 0; p < plane; p++) out[base + p] = src[p * 3 + c] * scale - offset;
  }
  return out;
}

function describeSource(source: string | Uint8Array): string {
  return typeof source === 'string' ? source : `(${source.byteLength}-byte buffer)`;
}

/** ImageNet mean and std (RGB), used by torchvision and DINO. */
export const IMAGENET_MEAN = [0.485, 0.456, 0.406] as const;
export const IMAGENET_STD = [0.229, 0.224, 0.225] as const;
