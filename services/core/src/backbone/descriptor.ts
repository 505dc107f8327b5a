// Backbone descriptors: which ONNX file, which outputs, how images are sized and normalised. A
// descriptor is recorded with every feature set and model so results can be traced to a backbone.

import { readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { BackboneError } from '../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD, type InputSizePolicy } from '../image/image.js';

export type BackboneKind = 'cnn' | 'vit';

export interface BackboneDescriptor {
  /** Human-readable id, e.g. `mobilenetv2-int8` or `dino-vits8`. */
  id: string;
  /** sha256 of the ONNX file (hex). */
  sha256: string;
  /** `cnn`: outputs [1, C, h, w]; `vit`: outputs [1, 1 + h*w, C] with a leading CLS token. */
  kind: BackboneKind;
  /** Name of the image input, [1, 3, H, W] float32. */
  input: string;
  /**
   * Outputs to use. Several outputs are bilinearly resized to the finest grid among them and
   * concatenated along channels.
   */
  outputs: string[];
  /** Input pixels per feature cell of the finest chosen output (CNN stride or ViT patch size). */
  stride: number;
  /** RGB mean and std applied to [0, 1] pixels. */
  mean: readonly number[];
  std: readonly number[];
  inputSize: InputSizePolicy;
  /**
   * `l2`: L2-normalise each output's channel vector per cell before concatenation, so outputs of
   * different magnitude weigh the same in cosine similarities. `none`: raw values.
   */
  outputNorm: 'none' | 'l2';
}

/** Descriptors for backbones whose best settings were measured (bench/RESULTS.md), keyed by sha256. */
export const KNOWN_BACKBONES: Record<string, Omit<BackboneDescriptor, 'sha256'>> = {
  // ../shared/models/mobilenetv2-int8-features.onnx (ONNX Model Zoo mobilenetv2-12-int8, classifier removed).
  '54bc042e527ffcc09ebcf5f0f2ed94177511c9bfad5b4f9fdad93f99131fff83': {
    id: 'mobilenetv2-int8',
    kind: 'cnn',
    input: 'input',
    outputs: ['feat_528', 'feat_591'],
    stride: 8,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    inputSize: { kind: 'native', multipleOf: 8 },
    outputNorm: 'l2',
  },
};

/** sha256 (hex) of a file's bytes. */
export async function sha256File(path: string): Promise<string> {
  return sha256Hex(await readFile(path));
}

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Checks a descriptor read from JSON; throws BackboneError naming the bad field. */
export function validateDescriptor(value: unknown, where: string): Omit<BackboneDescriptor, 'sha256'> & { sha256?: string } {
  const fail = (msg: string): never => {
    throw new BackboneError(`${where}: ${msg}`);
  };
  if (typeof value !== 'object' || value === null) fail('descriptor must be a JSON object');
  const d = value as Record<string, unknown>;
  if (typeof d.id !== 'string' || d.id === '') fail('"id" must be a non-empty string');
  if (d.kind !== 'cnn' && d.kind !== 'vit') fail('"kind" must be "cnn" or "vit"');
  if (typeof d.input !== 'string') fail('"input" must be the name of the image input');
  if (!Array.isArray(d.outputs) || d.outputs.length === 0 || !d.outputs.every((o) => typeof o === 'string')) {
    fail('"outputs" must be a non-empty array of output names');
  }
  if (!Number.isInteger(d.stride) || (d.stride as number) < 1) fail('"stride" must be a positive integer');
  for (const key of ['mean', 'std'] as const) {
    const v = d[key] ?? (key === 'mean' ? IMAGENET_MEAN : IMAGENET_STD);
    if (!Array.isArray(v) || v.length !== 3 || !v.every((x) => typeof x === 'number' && Number.isFinite(x))) {
      fail(`"${key}" must be three numbers`);
    }
    d[key] = v;
  }
  if ((d.std as number[]).some((x) => x <= 0)) fail('"std" must be positive');
  const size = d.inputSize as Record<string, unknown> | undefined;
  if (size === undefined) d.inputSize = { kind: 'native', multipleOf: d.stride };
  else if (!['native', 'fixed', 'shortSide'].includes(size.kind as string)) fail('"inputSize.kind" must be native, fixed or shortSide');
  if (d.outputNorm === undefined) d.outputNorm = 'none';
  if (d.outputNorm !== 'none' && d.outputNorm !== 'l2') fail('"outputNorm" must be "none" or "l2"');
  if (d.sha256 !== undefined && (typeof d.sha256 !== 'string' || !/^[0-9a-f]{64}$/.test(d.sha256))) {
    fail('"sha256" must be 64 lowercase hex digits');
  }
  return d as unknown as BackboneDescriptor;
}

/**
 * A stable short key of everything that changes extracted features: model bytes, outputs, sizing,
 * normalisation. Feature cache entries and models record it.
 */
export function featureConfigKey(d: BackboneDescriptor): string {
  const relevant = {
    sha256: d.sha256,
    kind: d.kind,
    input: d.input,
    outputs: d.outputs,
    stride: d.stride,
    mean: d.mean,
    std: d.std,
    inputSize: d.inputSize,
    outputNorm: d.outputNorm,
  };
  return createHash('sha256').update(JSON.stringify(relevant)).digest('hex').slice(0, 24);
}
