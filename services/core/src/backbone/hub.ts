// Downloads public ONNX exports of the paper's DINO backbones (Hugging Face hub, Xenova/dino-*) and
// writes a descriptor beside each model, so `--backbone models/dino-vits8.onnx` works at once.

import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm, writeFile, readFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BackboneError, NetworkError } from '../errors.js';
import { IMAGENET_MEAN, IMAGENET_STD } from '../image/image.js';
import type { BackboneDescriptor } from './descriptor.js';
import { descriptorPathFor } from './backbone.js';

interface HubModel {
  repo: string;
  file: string;
  patch: number;
}

/** The DINO backbones of the paper (Caron et al. 2021), as exported to ONNX by Xenova (transformers.js). */
export const HUB_BACKBONES: Record<string, HubModel> = {
  'dino-vits8': { repo: 'Xenova/dino-vits8', file: 'onnx/model.onnx', patch: 8 },
  'dino-vits16': { repo: 'Xenova/dino-vits16', file: 'onnx/model.onnx', patch: 16 },
  'dino-vitb8': { repo: 'Xenova/dino-vitb8', file: 'onnx/model.onnx', patch: 8 },
  'dino-vitb16': { repo: 'Xenova/dino-vitb16', file: 'onnx/model.onnx', patch: 16 },
};

export const DEFAULT_HUB_URL = 'https://huggingface.co';

export interface PullOptions {
  /** Folder receiving `<name>.onnx` and `<name>.backbone.json`. */
  modelsDir: string;
  /** Hub base URL (default https://huggingface.co; HF_ENDPOINT-style mirrors work). */
  hubUrl?: string;
  /** Re-download even when a verified copy exists. */
  force?: boolean;
  /** Abort when no byte arrives for this long (ms). Default 60 000. */
  idleTimeoutMs?: number;
  onProgress?: (receivedBytes: number, totalBytes: number | undefined) => void;
}

export interface PullResult {
  name: string;
  modelPath: string;
  descriptorPath: string;
  sha256: string;
  bytes: number;
  /** False when an existing verified copy was kept. */
  downloaded: boolean;
}

export function descriptorForHubModel(name: string, sha256: string): BackboneDescriptor & { file: string } {
  const model = HUB_BACKBONES[name];
  return {
    id: name,
    file: `${name}.onnx`,
    sha256,
    kind: 'vit',
    input: 'pixel_values',
    outputs: ['last_hidden_state'],
    stride: model.patch,
    mean: IMAGENET_MEAN,
    std: IMAGENET_STD,
    // The exports carry position embeddings for 224 x 224 inputs.
    inputSize: { kind: 'fixed', width: 224, height: 224 },
    outputNorm: 'none',
  };
}

/** Downloads a hub backbone by name; see HUB_BACKBONES for the names. */
export async function pullBackbone(name: string, options: PullOptions): Promise<PullResult> {
  const model = HUB_BACKBONES[name];
  if (!model) throw new BackboneError(`unknown backbone "${name}"; known: ${Object.keys(HUB_BACKBONES).join(', ')}`);
  const modelPath = join(options.modelsDir, `${name}.onnx`);
  const descriptorPath = descriptorPathFor(modelPath);
  if (!options.force) {
    const existing = await verifiedCopy(modelPath, descriptorPath);
    if (existing) return { name, modelPath, descriptorPath, sha256: existing.sha256, bytes: existing.bytes, downloaded: false };
  }
  const hubUrl = (options.hubUrl ?? DEFAULT_HUB_URL).replace(/\/+$/, '');
  const url = `${hubUrl}/${model.repo}/resolve/main/${model.file}`;
  await mkdir(options.modelsDir, { recursive: true });
  const temporary = `${modelPath}.part`;
  const { sha256, bytes } = await download(url, temporary, hubUrl, options);
  await rename(temporary, modelPath);
  const descriptor = descriptorForHubModel(name, sha256);
  await writeFile(descriptorPath, `${JSON.stringify(descriptor, null, 2)}\n`);
  return { name, modelPath, descriptorPath, sha256, bytes, downloaded: true };
}

async function verifiedCopy(modelPath: string, descriptorPath: string): Promise<{ sha256: string; bytes: number } | undefined> {
  try {
    const descriptor = JSON.parse(await readFile(descriptorPath, 'utf8')) as { sha256?: string };
    const bytes = await readFile(modelPath);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    return sha256 === descriptor.sha256 ? { sha256, bytes: bytes.length } : undefined;
  } catch {
    return undefined;
  }
}

async function download(url: string, path: string, hubUrl: string, options: PullOptions): Promise<{ sha256: string; bytes: number }> {
  const controller = new AbortController();
  const idleMs = options.idleTimeoutMs ?? 60_000;
  let idleTimer = setTimeout(() => controller.abort(), idleMs);
  const touch = () => {
    clearTimeout(idleTimer);
    idleTimer = setTimeout(() => controller.abort(), idleMs);
  };
  const unreachable = (detail: string, cause?: unknown) =>
    new NetworkError(
      `cannot download ${url}: ${detail}. Check the network, set --hub-url (or HF_ENDPOINT) to a reachable mirror, or copy the .onnx file into ${options.modelsDir} by hand`,
      { cause },
    );
  let response: Response;
  try {
    response = await fetch(url, { signal: controller.signal, redirect: 'follow' });
  } catch (err) {
    clearTimeout(idleTimer);
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    const detail = controller.signal.aborted ? `no answer from ${hubUrl} within ${idleMs / 1000}s` : (cause?.code ?? cause?.message ?? (err as Error).message);
    throw unreachable(detail, err);
  }
  if (!response.ok || !response.body) {
    clearTimeout(idleTimer);
    throw unreachable(`the server answered HTTP ${response.status} ${response.statusText}`.trim());
  }
  const totalHeader = Number(response.headers.get('content-length'));
  const total = Number.isFinite(totalHeader) && totalHeader > 0 ? totalHeader : undefined;
  const hash = createHash('sha256');
  const file = createWriteStream(path);
  let received = 0;
  try {
    for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
      touch();
      hash.update(chunk);
      received += chunk.length;
      if (!file.write(chunk)) await new Promise<void>((resolve) => file.once('drain', () => resolve()));
      options.onProgress?.(received, total);
    }
    await new Promise<void>((resolve, reject) => file.end((err?: Error | null) => (err ? reject(err) : resolve())));
  } catch (err) {
    file.destroy();
    await rm(path, { force: true });
    throw unreachable(controller.signal.aborted ? `the download stalled for ${idleMs / 1000}s` : (err as Error).message, err);
  } finally {
    clearTimeout(idleTimer);
  }
  if (total !== undefined && received !== total) {
    await rm(path, { force: true });
    throw unreachable(`received ${received} of ${total} bytes`);
  }
  return { sha256: hash.digest('hex'), bytes: received };
}
