// Options and helpers shared by commands that run a backbone.

import type { Backbone } from '@fuss/core';
import type { CliIo } from '../io.js';
import { UsageError, type OptionSpec, type OptionValues } from '../options.js';

export const BACKBONE_OPTIONS: OptionSpec[] = [
  { name: 'backbone', type: 'string', arg: 'ONNX', description: 'Backbone model (.onnx) or descriptor (.backbone.json)', env: 'FUSS_BACKBONE', required: true },
  { name: 'outputs', type: 'string', arg: 'NAMES', description: 'Comma-separated backbone outputs to use (default: the descriptor\'s)' },
  { name: 'input-size', type: 'string', arg: 'POLICY', description: 'Input sizing: native[/M], WxH or short:S[/M] (default: the descriptor\'s)' },
  { name: 'threads', type: 'integer', arg: 'N', description: 'onnxruntime intra-op threads (0: all cores)', default: 0, min: 0, env: 'FUSS_THREADS' },
  { name: 'device', type: 'string', arg: 'DEVICE', description: 'Execution device; cuda falls back to cpu with a log line', default: 'cpu', choices: ['cpu', 'cuda'], env: 'FUSS_DEVICE' },
  { name: 'cache', type: 'string', arg: 'DIR', description: 'Feature cache folder', default: '.fuss/cache', env: 'FUSS_CACHE' },
  { name: 'no-cache', type: 'boolean', description: 'Neither read nor write the feature cache' },
];

export async function openBackbone(values: OptionValues, io: CliIo): Promise<Backbone> {
  const core = await import('@fuss/core');
  const overrides: Parameters<typeof core.Backbone.open>[1] = { threads: values.threads as number, device: values.device as 'cpu' | 'cuda', log: (line) => io.stderr(`${line}\n`) };
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
