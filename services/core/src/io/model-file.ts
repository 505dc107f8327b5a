// The segmentation model on disk and on the wire (DESIGN section 4): a safetensors file with the head
// (PyTorch 1x1-conv layout [out, in, 1, 1]), the centroids [K, D] and metadata tying it to a backbone.

import { ShapeError, FussError } from '../errors.js';
import type { HeadParams } from '../engines/engine.js';
import { encodeSafetensors, parseSafetensorsHeader, readTensors, SafetensorsError, shownName, type DecodeOptions, type NamedTensor, type SafetensorsLayout } from './safetensors.js';

export const MODEL_FORMAT = 'fuss-segmentation-model';
export const MODEL_FORMAT_VERSION = '1';

export interface ModelBackboneInfo {
  id: string;
  sha256: string;
  /** featureConfigKey of the backbone descriptor (outputs, sizing, normalisation). */
  featureKey: string;
}

export interface SegmentationModel {
  head: HeadParams;
  /** [k, codeDim] */
  centroids: Float32Array;
  channels: number;
  codeDim: number;
  k: number;
  backbone: ModelBackboneInfo;
  /** Federated round that produced it (0: initial or centralized). */
  round: number;
  /** Global model version (0: initial). */
  version: number;
  /** Free-form JSON-serialisable training settings and statistics. */
  info?: Record<string, unknown>;
}

/** A model that cannot be used with the given backbone or shape. */
export class IncompatibleModelError extends FussError {
  constructor(message: string) {
    super(message, { status: 409, type: 'incompatible-model' });
  }
}

const LAYERS = [
  ['l1Weight', 'head.l1.weight'],
  ['l1Bias', 'head.l1.bias'],
  ['l2Weight', 'head.l2.weight'],
  ['l2Bias', 'head.l2.bias'],
  ['l3Weight', 'head.l3.weight'],
  ['l3Bias', 'head.l3.bias'],
] as const;

function layerDims(name: (typeof LAYERS)[number][0], channels: number, codeDim: number): number[] {
  switch (name) {
    case 'l1Weight':
    case 'l3Weight':
      return [codeDim, channels, 1, 1];
    case 'l2Weight':
      return [channels, channels, 1, 1];
    case 'l2Bias':
      return [channels];
    default:
      return [codeDim];
  }
}

export function encodeModel(model: SegmentationModel): Uint8Array {
  const tensors: Record<string, NamedTensor> = { centroids: { dims: [model.k, model.codeDim], data: model.centroids } };
  for (const [key, name] of LAYERS) tensors[name] = { dims: layerDims(key, model.channels, model.codeDim), data: model.head[key] };
  return encodeSafetensors(tensors, {
    format: MODEL_FORMAT,
    format_version: MODEL_FORMAT_VERSION,
    backbone_id: model.backbone.id,
    backbone_sha256: model.backbone.sha256,
    feature_key: model.backbone.featureKey,
    channels: String(model.channels),
    code_dim: String(model.codeDim),
    k: String(model.k),
    round: String(model.round),
    version: String(model.version),
    info: JSON.stringify(model.info ?? {}),
  });
}

export interface ModelExpectations {
  /** Accepted tensor dtypes (default F32 and F16; updates from participants: F32 only). */
  dtypes?: readonly ('F32' | 'F16')[];
  backboneSha256?: string;
  featureKey?: string;
  channels?: number;
  codeDim?: number;
  k?: number;
}

/** What a model file's header says (everything but the tensors' values). */
export type ModelHeader = Omit<SegmentationModel, 'head' | 'centroids'>;

/**
 * Checks a model file's header without reading its values: format metadata, tensor names and shapes,
 * and the expectations (backbone, features, shape). Throws the errors decodeModel throws.
 */
export function checkModelHeader(layout: SafetensorsLayout, expect: ModelExpectations = {}, what = 'model'): ModelHeader {
  const { metadata } = layout;
  if (metadata.format !== MODEL_FORMAT) throw new SafetensorsError(`${what}: not a FUSS model (metadata "format" is ${JSON.stringify(metadata.format)})`);
  if (metadata.format_version !== MODEL_FORMAT_VERSION) throw new SafetensorsError(`${what}: unsupported model format version ${metadata.format_version}`);
  const integer = (key: string) => {
    const value = Number(metadata[key]);
    if (!Number.isSafeInteger(value) || value < 0) throw new SafetensorsError(`${what}: metadata "${key}" must be a non-negative integer`);
    return value;
  };
  const channels = integer('channels');
  const codeDim = integer('code_dim');
  const k = integer('k');
  const shapes = new Map(layout.entries.map((e) => [e.name, e.shape]));
  const check = (name: string, dims: number[]) => {
    const shape = shapes.get(name);
    if (!shape) throw new ShapeError(`${what}: tensor "${name}" is missing`);
    if (shape.length !== dims.length || shape.some((d, i) => d !== dims[i])) {
      throw new ShapeError(`${what}: tensor "${name}" has shape [${shape}], expected [${dims}]`);
    }
  };
  for (const [key, name] of LAYERS) check(name, layerDims(key, channels, codeDim));
  check('centroids', [k, codeDim]);
  const extra = [...shapes.keys()].filter((n) => n !== 'centroids' && !LAYERS.some(([, name]) => name === n));
  if (extra.length) {
    const listed = extra.slice(0, 5).map(shownName).join(', ');
    throw new ShapeError(`${what}: unexpected tensors ${listed}${extra.length > 5 ? ` and ${extra.length - 5} more` : ''}`);
  }
  let info: Record<string, unknown> = {};
  try {
    info = JSON.parse(metadata.info ?? '{}');
  } catch {
    throw new SafetensorsError(`${what}: metadata "info" is not JSON`);
  }
  const header: ModelHeader = {
    channels,
    codeDim,
    k,
    backbone: { id: metadata.backbone_id ?? '', sha256: metadata.backbone_sha256 ?? '', featureKey: metadata.feature_key ?? '' },
    round: integer('round'),
    version: integer('version'),
    info,
  };
  if (expect.backboneSha256 !== undefined && header.backbone.sha256 !== expect.backboneSha256) {
    throw new IncompatibleModelError(`${what} was trained on backbone ${header.backbone.id} (sha256 ${header.backbone.sha256.slice(0, 12)}...), not on this one (${expect.backboneSha256.slice(0, 12)}...)`);
  }
  if (expect.featureKey !== undefined && header.backbone.featureKey !== expect.featureKey) {
    throw new IncompatibleModelError(`${what} was trained on other backbone features (outputs, input size or normalisation differ: key ${header.backbone.featureKey} vs ${expect.featureKey})`);
  }
  for (const key of ['channels', 'codeDim', 'k'] as const) {
    if (expect[key] !== undefined && header[key] !== expect[key]) throw new IncompatibleModelError(`${what} has ${key} ${header[key]}, expected ${expect[key]}`);
  }
  return header;
}

/**
 * Decodes and validates a model file: its header (checkModelHeader), then its values (finite).
 * `copy: false` lets the tensors be views into `bytes`; `checkFinite: false` leaves finiteness to the
 * caller (see readTensors).
 */
export function decodeModel(bytes: Uint8Array, expect: ModelExpectations = {}, what = 'model', options: Pick<DecodeOptions, 'copy' | 'checkFinite'> = {}): SegmentationModel {
  const layout = parseSafetensorsHeader(bytes, bytes.length, what, { dtypes: expect.dtypes ?? ['F32', 'F16'] });
  const header = checkModelHeader(layout, expect, what);
  const tensors = readTensors(bytes, layout, what, options);
  const head = Object.fromEntries(LAYERS.map(([key, name]) => [key, tensors[name].data])) as unknown as HeadParams;
  return { head, centroids: tensors.centroids.data, ...header };
}
