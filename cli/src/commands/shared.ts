// Options and helpers shared by commands that run a backbone.

import type { Backbone, DeviceRequest, ResolvedDevice } from '@fuss/core';
import type { CliIo } from '../io.js';
import { UsageError, type OptionSpec, type OptionValues } from '../options.js';

/** Kept equal to @fuss/core's DEVICE_REQUESTS (a test checks) so that the help needs no heavy import. */
export const DEVICE_CHOICES = ['auto', 'cpu', 'webgpu', 'cuda'] as const;

export const DEVICE_OPTION: OptionSpec = {
  name: 'device',
  type: 'string',
  arg: 'DEVICE',
  description: 'onnxruntime execution provider of the backbone and the onnx engine; auto tries cuda, then webgpu, then cpu, and an unavailable one falls back to cpu with one log line',
  default: 'auto',
  choices: DEVICE_CHOICES,
  env: 'FUSS_DEVICE',
};

/** Resolves --device once per command, logging the one line of the choice. */
export async function resolveCliDevice(values: OptionValues, io: CliIo): Promise<ResolvedDevice> {
  const { resolveDevice } = await import('@fuss/core');
  return resolveDevice(values.device as DeviceRequest, { log: (line) => io.stderr(`${line}\n`) });
}

export const BACKBONE_OPTIONS: OptionSpec[] = [
  { name: 'backbone', type: 'string', arg: 'ONNX', description: 'Backbone model (.onnx) or descriptor (.backbone.json)', env: 'FUSS_BACKBONE', required: true },
  { name: 'outputs', type: 'string', arg: 'NAMES', description: 'Comma-separated backbone outputs to use (default: the descriptor\'s)' },
  { name: 'input-size', type: 'string', arg: 'POLICY', description: 'Input sizing: native[/M], WxH or short:S[/M] (default: the descriptor\'s)' },
  { name: 'threads', type: 'integer', arg: 'N', description: 'onnxruntime intra-op threads (0: all cores)', default: 0, min: 0, env: 'FUSS_THREADS' },
  DEVICE_OPTION,
  { name: 'cache', type: 'string', arg: 'DIR', description: 'Feature cache folder', default: '.fuss/cache', env: 'FUSS_CACHE' },
  { name: 'no-cache', type: 'boolean', description: 'Neither read nor write the feature cache' },
];

/** Opens --backbone on `device` (default: --device resolved here). */
export async function openBackbone(values: OptionValues, io: CliIo, device?: ResolvedDevice): Promise<Backbone> {
  const core = await import('@fuss/core');
  const overrides: Parameters<typeof core.Backbone.open>[1] = {
    threads: values.threads as number,
    device: device ?? (await resolveCliDevice(values, io)),
    log: (line) => io.stderr(`${line}\n`),
  };
  const outputs = values.outputs as string | undefined;
  const inputSize = values['input-size'] as string | undefined;
  const backbone = await core.Backbone.open(values.backbone as string, {
    ...overrides,
    overrides: {
      ...(outputs ? { outputs: outputs.split(',').map((s) => s.trim()).filter(Boolean) } : {}),
      ...(inputSize ? { inputSize: core.parseInputSizePolicy(inputSize, 8) } : {}),
    },
  });
  const d = backbone.descriptor;
  io.stderr(`backbone: ${d.id} (${d.kind}, outputs ${d.outputs.join('+')}, stride ${d.stride}, ${backbone.device})\n`);
  return backbone;
}

export function cacheDirOf(values: OptionValues): string | undefined {
  return values['no-cache'] ? undefined : (values.cache as string);
}

/** Aggregation modules from a list such as "W,E,C" (size weighting, head, centroids). */
export function parseModules(text: string) {
  const parts = text.split(',').map((s) => s.trim().toUpperCase()).filter(Boolean);
  const unknown = parts.filter((p) => !['W', 'E', 'C'].includes(p));
  if (unknown.length) throw new UsageError(`--modules takes W, E and C (got ${unknown.join(', ')})`);
  return { weighted: parts.includes('W'), head: parts.includes('E'), centroids: parts.includes('C') };
}
