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

/**
 * The federation defaults of `fuss simulate` and `fuss federation create`, as option text: @fuss/core's
 * FEDERATION_DEFAULTS (the best measured on the unseen-domain protocol, bench/RESULTS.md), kept equal
 * to it here (a test checks) so that the help needs no heavy import.
 */
export const FEDERATION_DEFAULT_OPTIONS = {
  strategy: 'fedcc-maximin-cosine',
  modules: 'W,E,C',
  robust: 'clip',
  regularizer: 'none',
  'server-optimizer': 'fedavgm:1:0.9',
  'local-optimizer': 'reset',
  'lr-schedule': 'constant',
  augment: 'none',
  selection: 'none',
} as const;

/**
 * Named configurations of `fuss simulate` and `fuss federation create` (`--preset NAME`). `paper`: the
 * FUSS paper's settings exactly (@fuss/core's PAPER_FEDERATION, a test checks: FedCC-KMeans, modules
 * W+E+C, no robust rule, Adam restarted every round at a constant learning rate, no augmentation, no
 * server optimiser, no model selection), so the defaults can move while the paper stays one flag away.
 */
export const FEDERATION_PRESETS = {
  paper: {
    strategy: 'fedcc-kmeans',
    modules: 'W,E,C',
    robust: 'none',
    regularizer: 'none',
    'server-optimizer': 'none',
    'local-optimizer': 'reset',
    'lr-schedule': 'constant',
    augment: 'none',
    selection: 'none',
  },
} satisfies Record<string, Record<keyof typeof FEDERATION_DEFAULT_OPTIONS, string>>;

const ROBUST_HELP = 'Robust aggregation: clip[:c] (deltas clipped to c times the median norm, c = 2), trimmed-mean[:beta], median, krum[:f], multi-krum[:f[:m]], or none (the paper)';

/** The aggregation options both commands take, with the defaults above. */
export const AGGREGATION_OPTIONS: OptionSpec[] = [
  { name: 'strategy', type: 'string', arg: 'NAME', description: 'Aggregation strategy (fedavg, fedcc-kmeans, fedcc-maximin, fedcc-kmeans-cosine, fedcc-maximin-cosine, ...)', default: FEDERATION_DEFAULT_OPTIONS.strategy },
  { name: 'modules', type: 'string', arg: 'LIST', description: 'Aggregation modules: W (size weighting), E (head), C (centroids); e.g. "C" keeps each head', default: FEDERATION_DEFAULT_OPTIONS.modules },
  { name: 'robust', type: 'string', arg: 'RULE', description: ROBUST_HELP, default: FEDERATION_DEFAULT_OPTIONS.robust },
  { name: 'regularizer', type: 'string', arg: 'NAME', description: 'Client regularizer', default: FEDERATION_DEFAULT_OPTIONS.regularizer, choices: ['none', 'fedprox', 'moon'] },
];

export const PRESET_OPTION: OptionSpec = {
  name: 'preset',
  type: 'string',
  arg: 'NAME',
  description: `A named configuration replacing the defaults it names (flags still win); paper: ${Object.entries(FEDERATION_PRESETS.paper).map(([k, v]) => `--${k} ${v}`).join(' ')}`,
  choices: Object.keys(FEDERATION_PRESETS),
};

/** The options of the mechanisms a federation can add to the paper's (issue 16), shared by simulate and federation create. */
export const MECHANISM_OPTIONS: OptionSpec[] = [
  { name: 'server-optimizer', type: 'string', arg: 'OPT', description: `Server optimiser on the head delta: none (FedAvg), fedavgm[:lr[:momentum]] (default 1, 0.9) or fedadam[:lr[:tau[:beta1[:beta2]]]] (Reddi et al. 2021; default 0.01, 0.001, 0.9, 0.99). Default: ${FEDERATION_DEFAULT_OPTIONS['server-optimizer']} when the head is aggregated (module E), else none` },
  { name: 'local-optimizer', type: 'string', arg: 'POLICY', description: "Participants' Adam optimisers: reset every round (the paper) or keep their state across rounds", default: FEDERATION_DEFAULT_OPTIONS['local-optimizer'], choices: ['reset', 'keep'] },
  { name: 'lr-schedule', type: 'string', arg: 'NAME', description: 'Learning rates across the rounds: constant (the paper) or cosine (from the paper rates down to 0 at the last step)', default: FEDERATION_DEFAULT_OPTIONS['lr-schedule'], choices: ['constant', 'cosine'] },
  { name: 'augment', type: 'string', arg: 'VIEWS', description: 'Views participants train on, cached per view: none, flip, crops:F (five crops of F of each side) or flip,crops:F', default: FEDERATION_DEFAULT_OPTIONS.augment },
  { name: 'selection', type: 'string', arg: 'RULE', description: 'Label-free model selection: none, or loss[:holdout[:patience]] (each participant holds out that share of its images and scores every global model on them; the best-scored version is selected, and the federation stops after patience versions without a better one, 0 never)', default: FEDERATION_DEFAULT_OPTIONS.selection },
];

/**
 * The mechanism options checked and in canonical text form; a malformed one is a usage error. Without
 * --server-optimizer, the default applies where it can (module E on), else none.
 */
export async function parseMechanisms(values: OptionValues, modules: { head: boolean }) {
  const core = await import('@fuss/core');
  const usage = <T>(parse: () => T): T => {
    try {
      return parse();
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
  };
  return {
    serverOptimizer: usage(() => {
      const given = values['server-optimizer'] as string | undefined;
      const serverOptimizer = core.formatServerOptimizer(core.parseServerOptimizer(given ?? core.defaultServerOptimizer(modules)));
      checkServerOptimizerModules(serverOptimizer, modules);
      return serverOptimizer;
    }),
    localOptimizer: values['local-optimizer'] as 'reset' | 'keep',
    lrSchedule: values['lr-schedule'] as 'constant' | 'cosine',
    augment: usage(() => core.formatAugmentation(values.augment as string)),
    selection: usage(() => core.formatSelectionRule(core.parseSelectionRule(values.selection as string))),
  };
}

/** The server optimiser (fedavgm by default) steps along the aggregated head, so it needs module E. */
function checkServerOptimizerModules(serverOptimizer: string, modules: { head: boolean }): void {
  if (serverOptimizer !== 'none' && !modules.head) {
    throw new UsageError(`--server-optimizer ${serverOptimizer} steps along the aggregated head: it needs module E in --modules (give --server-optimizer none to federate without the head)`);
  }
}
