// Runs a frozen ONNX backbone (onnxruntime-node) over images and returns feature maps [C, h, w].
// CNN outputs [1, C, h, w] and ViT tokens [1, 1 + h*w, C] (CLS dropped) are both supported; several
// outputs are resized to the finest grid and concatenated.

import { readFile, access } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';
import type * as Ort from 'onnxruntime-node';
import { BackboneError, firstLineOf } from '../errors.js';
import { createSessionOn, loadOnnxRuntime, toResolvedDevice, type DeviceChoice, type DeviceName } from '../device/execution-device.js';
import { decodeRgb, inputSizeFor, normalizeToChw, readImageSize, resizeRgb, IMAGENET_MEAN, IMAGENET_STD, type RgbImage } from '../image/image.js';
import { applyView, IDENTITY_VIEW, type FeatureView } from '../features/views.js';
import { FeatureAssembler } from './feature-graph.js';
import {
  KNOWN_BACKBONES,
  sha256Hex,
  validateDescriptor,
  type BackboneDescriptor,
  type BackboneKind,
} from './descriptor.js';

/** Features of one image on the backbone's grid. */
export interface FeatureMap {
  channels: number;
  height: number;
  width: number;
  /** [channels, height, width] */
  data: Float32Array;
  /**
   * The same values as IEEE half bits, when the map was rounded to float16 (the feature cache's
   * precision: `extractDecoded(image, { roundToFloat16: true })`); `data` then holds the rounded values.
   */
  half?: Uint16Array;
}

/** How {@link Backbone.extractDecoded} returns its features. */
export interface ExtractionOptions {
  /** Round to float16 and return the half bits too (`FeatureMap.half`), for the feature cache. */
  roundToFloat16?: boolean;
}

export interface BackboneOptions {
  /** Override descriptor fields (outputs, inputSize, ...). */
  overrides?: Partial<Omit<BackboneDescriptor, 'sha256'>>;
  /** Intra-op threads of onnxruntime (default: all cores, i.e. 0 lets onnxruntime decide). */
  threads?: number;
  /**
   * Execution provider (default cpu): a request such as `auto` or `webgpu` is resolved here (one log
   * line); an unavailable provider falls back to the CPU. Pass a ResolvedDevice to share one choice.
   */
  device?: DeviceChoice;
  /** Where to report choices such as a CPU fallback (default: nowhere). */
  log?: (line: string) => void;
}

/** Descriptor file next to a model: `model.onnx` -> `model.backbone.json`. */
export function descriptorPathFor(modelPath: string): string {
  return join(dirname(modelPath), `${basename(modelPath, extname(modelPath))}.backbone.json`);
}

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

export class Backbone {
  private constructor(
    readonly descriptor: BackboneDescriptor,
    /** Absolute or caller-relative path of the ONNX file. */
    readonly modelPath: string,
    private readonly session: Ort.InferenceSession,
    private readonly ort: typeof Ort,
    /** Execution provider actually in use. */
    readonly device: DeviceName,
    private readonly assembler: FeatureAssembler,
  ) {}

  /**
   * Opens a backbone from an `.onnx` file or a `.backbone.json` descriptor. The descriptor comes from,
   * in order: the given JSON file; a `<name>.backbone.json` beside the model; the table of measured
   * backbones (by sha256); otherwise it is inferred by probing the model. `overrides` win over all.
   */
  static async open(path: string, options: BackboneOptions = {}): Promise<Backbone> {
    let modelPath = path;
    let fromFile: (Omit<BackboneDescriptor, 'sha256'> & { sha256?: string; file?: string }) | undefined;
    if (extname(path) === '.json') {
      fromFile = await readDescriptorFile(path);
      modelPath = join(dirname(path), fromFile.file ?? `${basename(path, '.backbone.json')}.onnx`);
    } else if (await exists(descriptorPathFor(path))) {
      fromFile = await readDescriptorFile(descriptorPathFor(path));
    }
    let bytes: Uint8Array;
    try {
      bytes = await readFile(modelPath);
    } catch (err) {
      throw new BackboneError(`cannot read backbone model ${modelPath}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
    }
    const sha256 = sha256Hex(bytes);
    if (fromFile?.sha256 && fromFile.sha256 !== sha256) {
      throw new BackboneError(`backbone ${modelPath} has sha256 ${sha256}, but its descriptor expects ${fromFile.sha256}`);
    }
    const ort = await loadOnnxRuntime();
    const { session, device } = await createSession(bytes, modelPath, options);
    const base = fromFile ?? KNOWN_BACKBONES[sha256] ?? (await inferDescriptor(ort, session, modelPath));
    const descriptor: BackboneDescriptor = { ...base, ...options.overrides, sha256 } as BackboneDescriptor;
    delete (descriptor as { file?: string }).file;
    for (const name of [descriptor.input]) {
      if (!session.inputNames.includes(name)) {
        throw new BackboneError(`backbone ${modelPath} has no input "${name}" (inputs: ${session.inputNames.join(', ')})`);
      }
    }
    for (const name of descriptor.outputs) {
      if (!session.outputNames.includes(name)) {
        throw new BackboneError(`backbone ${modelPath} has no output "${name}" (outputs: ${session.outputNames.join(', ')})`);
      }
    }
    const assembler = new FeatureAssembler(ort, { l2: descriptor.outputNorm === 'l2', threads: options.threads ?? 0 });
    return new Backbone(descriptor, modelPath, session, ort, device, assembler);
  }

  /** Names of every output of the model (to choose `outputs`). */
  get availableOutputs(): readonly string[] {
    return this.session.outputNames;
  }

  private channelCount?: number;

  /** Feature channels C of this backbone (runs it once on a grey 224x224-sized image; remembered). */
  async featureChannels(): Promise<number> {
    if (this.channelCount === undefined) {
      const size = inputSizeFor(this.descriptor.inputSize, 224, 224);
      const grey = { width: size.width, height: size.height, data: new Uint8Array(size.width * size.height * 3).fill(128) };
      this.channelCount = (await this.extractDecoded(grey)).channels;
    }
    return this.channelCount;
  }

  /** Decodes, sizes and normalises an image, then extracts its features. */
  async extract(source: string | Uint8Array, name?: string): Promise<FeatureMap> {
    return this.extractDecoded(await this.decode(source, name));
  }

  /**
   * Features of a view of an image (features/views.ts): decoded at its own size, cropped and mirrored,
   * then sized for the backbone like any image. The identity view is {@link extract}.
   */
  async extractView(source: string | Uint8Array, view: FeatureView, name?: string): Promise<FeatureMap> {
    return this.extractDecoded(await this.decodeView(source, view, name));
  }

  /** A view of an image decoded and sized for the backbone (exposed so decoding can overlap inference). */
  async decodeView(source: string | Uint8Array, view: FeatureView, name?: string): Promise<RgbImage> {
    if (view.id === IDENTITY_VIEW.id) return this.decode(source, name);
    const viewed = applyView(await decodeRgb(source, { name }), view);
    const target = inputSizeFor(this.descriptor.inputSize, viewed.width, viewed.height);
    const same = target.width === viewed.width && target.height === viewed.height;
    return same ? viewed : resizeRgb(viewed, target);
  }

  /** Decodes an image at the backbone's input size (exposed so decoding can overlap inference). */
  async decode(source: string | Uint8Array, name?: string): Promise<RgbImage> {
    const size = await readImageSize(source, name);
    const target = inputSizeFor(this.descriptor.inputSize, size.width, size.height);
    const same = target.width === size.width && target.height === size.height;
    return decodeRgb(source, { resize: same ? undefined : target, name });
  }

  /**
   * Runs the model on a decoded image; several outputs are normalised, resized and concatenated by
   * the assembly graph (feature-graph.ts).
   */
  async extractDecoded(image: RgbImage, options: ExtractionOptions = {}): Promise<FeatureMap> {
    const d = this.descriptor;
    const chw = normalizeToChw(image, d.mean, d.std);
    const input = new this.ort.Tensor('float32', chw, [1, 3, image.height, image.width]);
    let results: Ort.InferenceSession.ReturnType;
    try {
      results = await this.session.run({ [d.input]: input }, d.outputs);
    } catch (err) {
      throw new BackboneError(`backbone ${d.id} failed on a ${image.width}x${image.height} image: ${(err as Error).message}`, { cause: err });
    }
    const maps = d.outputs.map((name) => toGridTensor(this.ort, name, results[name], d.kind, image));
    try {
      return await this.assembler.assemble(maps, options.roundToFloat16 ?? false);
    } catch (err) {
      throw new BackboneError(`backbone ${d.id}: assembling the outputs of a ${image.width}x${image.height} image failed: ${firstLineOf(err)}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    await this.assembler.close();
    await this.session.release();
  }
}

async function readDescriptorFile(path: string) {
  let json: unknown;
  try {
    json = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    throw new BackboneError(`cannot read backbone descriptor ${path}: ${(err as Error).message}`, { cause: err });
  }
  return validateDescriptor(json, path) as Omit<BackboneDescriptor, 'sha256'> & { sha256?: string; file?: string };
}

async function createSession(
  bytes: Uint8Array,
  modelPath: string,
  options: BackboneOptions,
): Promise<{ session: Ort.InferenceSession; device: DeviceName }> {
  const base: Ort.InferenceSession.SessionOptions = {
    intraOpNumThreads: options.threads ?? 0,
    interOpNumThreads: 1,
    graphOptimizationLevel: 'all',
    // Idle threads sleep instead of spinning: the assembly session (feature-graph.ts), sharp's decoding and, in the
    // server, the event loop need the same cores (extractDecoded 19-20 -> 16-17.5 ms on 2 cores).
    extra: { session: { intra_op: { allow_spinning: '0' } } },
  };
  const device = await toResolvedDevice(options.device, options.log);
  try {
    return await createSessionOn(bytes, base, device, { what: 'backbone', log: options.log });
  } catch (err) {
    throw new BackboneError(`cannot load backbone ${modelPath} with onnxruntime: ${firstLineOf(err)}`, { cause: err });
  }
}

/** Checks one output tensor and returns it as [1, C, h, w] for the given input image size. */
function toGridTensor(ort: typeof Ort, name: string, tensor: Ort.Tensor | undefined, kind: BackboneKind, image: RgbImage): Ort.Tensor {
  if (!tensor || tensor.type !== 'float32') throw new BackboneError(`backbone output "${name}" is missing or not float32`);
  const dims = tensor.dims;
  const data = tensor.data as Float32Array;
  if (kind === 'cnn') {
    if (dims.length !== 4 || dims[0] !== 1) throw new BackboneError(`backbone output "${name}" has dims [${dims}], expected [1, C, h, w]`);
    return tensor;
  }
  if (dims.length !== 3 || dims[0] !== 1) throw new BackboneError(`backbone output "${name}" has dims [${dims}], expected [1, 1 + h*w, C]`);
  const tokens = dims[1] - 1;
  const channels = dims[2];
  const grid = vitGrid(tokens, image.width, image.height);
  if (!grid) {
    throw new BackboneError(`backbone output "${name}" has ${tokens} patch tokens, which is no grid for a ${image.width}x${image.height} input`);
  }
  // Drop the CLS token and transpose tokens [h*w, C] to [C, h, w].
  const out = new Float32Array(channels * tokens);
  for (let t = 0; t < tokens; t++) {
    const src = (t + 1) * channels;
    for (let c = 0; c < channels; c++) out[c * tokens + t] = data[src + c];
  }
  return new ort.Tensor('float32', out, [1, channels, grid.height, grid.width]);
}

/** The patch grid (h, w) with h*w = tokens for an input of the given size, or undefined. */
export function vitGrid(tokens: number, width: number, height: number): { height: number; width: number } | undefined {
  const patch = Math.round(Math.sqrt((width * height) / tokens));
  if (patch < 1) return undefined;
  const h = Math.floor(height / patch);
  const w = Math.floor(width / patch);
  return h * w === tokens ? { height: h, width: w } : undefined;
}

/** Infers a descriptor for an unknown model by looking at its outputs and running one probe. */
async function inferDescriptor(
  ort: typeof Ort,
  session: Ort.InferenceSession,
  modelPath: string,
): Promise<Omit<BackboneDescriptor, 'sha256'>> {
  if (session.inputNames.length !== 1) {
    throw new BackboneError(`backbone ${modelPath} has ${session.inputNames.length} inputs; write a .backbone.json descriptor naming the image input`);
  }
  const input = session.inputNames[0];
  const inputMeta = session.inputMetadata.find((m) => m.name === input);
  const shape = inputMeta && inputMeta.isTensor ? inputMeta.shape : [];
  const fixedH = typeof shape[2] === 'number' ? shape[2] : undefined;
  const fixedW = typeof shape[3] === 'number' ? shape[3] : undefined;
  const probeH = fixedH ?? 224;
  const probeW = fixedW ?? 224;
  let results: Ort.InferenceSession.ReturnType;
  try {
    const probe = new ort.Tensor('float32', new Float32Array(3 * probeH * probeW), [1, 3, probeH, probeW]);
    results = await session.run({ [input]: probe });
  } catch (err) {
    throw new BackboneError(`backbone ${modelPath} failed on a ${probeW}x${probeH} probe input: ${firstLineOf(err)}`, { cause: err });
  }
  for (const name of session.outputNames) {
    const dims = results[name].dims;
    if (dims.length === 4) {
      const stride = Math.round(probeH / dims[2]);
      return {
        id: basename(modelPath, extname(modelPath)),
        kind: 'cnn',
        input,
        outputs: [name],
        stride,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        inputSize: fixedH && fixedW ? { kind: 'fixed', width: fixedW, height: fixedH } : { kind: 'native', multipleOf: stride },
        outputNorm: 'none',
      };
    }
    if (dims.length === 3) {
      const grid = vitGrid(dims[1] - 1, probeW, probeH);
      if (!grid) continue;
      const patch = probeH / grid.height;
      return {
        id: basename(modelPath, extname(modelPath)),
        kind: 'vit',
        input,
        outputs: [name],
        stride: patch,
        mean: IMAGENET_MEAN,
        std: IMAGENET_STD,
        // ViT exports usually carry fixed position embeddings: keep the size they were probed at.
        inputSize: { kind: 'fixed', width: probeW, height: probeH },
        outputNorm: 'none',
      };
    }
  }
  throw new BackboneError(`backbone ${modelPath} has no spatial output ([1, C, h, w] feature map or [1, 1 + h*w, C] tokens)`);
}
