// Declarative command options: one table per command gives parsing, validation, defaults,
// environment variables and the help text (Vitest's cli-config, Prisma's command help).

import { parseArgs } from 'node:util';
import type { CliIo } from './io.js';

export type OptionType = 'string' | 'integer' | 'number' | 'boolean';

export interface OptionSpec {
  name: string;
  type: OptionType;
  description: string;
  /** Placeholder in help, e.g. DIR. */
  arg?: string;
  default?: string | number | boolean;
  /** Environment variable read when the flag is absent. */
  env?: string;
  required?: boolean;
  /** Allowed values for string options. */
  choices?: readonly string[];
  /** Lower bound for numeric options (inclusive). */
  min?: number;
}

export type OptionValues = Record<string, string | number | boolean | undefined>;

export interface Command {
  /** Words after `fuss`, e.g. `features` or `backbone pull`. */
  name: string;
  summary: string;
  usage: string;
  options: OptionSpec[];
  examples: string[];
  /**
   * Named sets of option values chosen with `--preset NAME` (the command declares a `preset` option):
   * they replace the defaults of the options they name; flags and environment variables still win.
   */
  presets?: Record<string, Record<string, string | number | boolean>>;
  /** Runs with parsed options; resolves to the exit code. */
  run(options: OptionValues, positionals: string[], io: CliIo): Promise<number>;
}

/** A mistake in how the command was called: printed with the command's help, exit code 2. */
export class UsageError extends Error {}

/** Options every command accepts. */
export const COMMON_OPTIONS: OptionSpec[] = [
  { name: 'help', type: 'boolean', description: 'Show this help' },
  { name: 'debug', type: 'boolean', description: 'Print stack traces on errors' },
];

export function parseOptions(command: Command, argv: string[], io: CliIo): { values: OptionValues; positionals: string[] } {
  const specs = [...command.options, ...COMMON_OPTIONS];
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: Object.fromEntries(specs.map((s) => [s.name, { type: s.type === 'boolean' ? 'boolean' : 'string' }])),
    });
  } catch (err) {
    throw new UsageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''));
  }
  const values: OptionValues = {};
  if (parsed.values.help) return { values: { help: true }, positionals: parsed.positionals };
  const presetSpec = specs.find((s) => s.name === 'preset');
  const presetName = command.presets && presetSpec && parsed.values.preset !== undefined ? String(convert(presetSpec, parsed.values.preset as string)) : undefined;
  const preset = presetName ? command.presets![presetName] : undefined;
  for (const spec of specs) {
    let raw = parsed.values[spec.name] as string | boolean | undefined;
    if (raw === undefined && spec.env && io.env[spec.env] !== undefined && io.env[spec.env] !== '') {
      raw = spec.type === 'boolean' ? io.env[spec.env] === '1' || io.env[spec.env] === 'true' : io.env[spec.env];
    }
    if (raw === undefined && preset && spec.name in preset) {
      values[spec.name] = preset[spec.name];
      continue;
    }
    if (raw === undefined) {
      if (spec.required) throw new UsageError(`missing required option --${spec.name}`);
      values[spec.name] = spec.default;
      continue;
    }
    values[spec.name] = convert(spec, raw);
  }
  return { values, positionals: parsed.positionals };
}

function convert(spec: OptionSpec, raw: string | boolean): string | number | boolean {
  if (spec.type === 'boolean') return raw;
  const text = String(raw);
  if (spec.type === 'string') {
    if (spec.choices && !spec.choices.includes(text)) {
      throw new UsageError(`--${spec.name} must be one of ${spec.choices.join(', ')} (got "${text}")`);
    }
    return text;
  }
  const value = Number(text);
  if (text.trim() === '' || !Number.isFinite(value) || (spec.type === 'integer' && !Number.isInteger(value))) {
    throw new UsageError(`--${spec.name} must be ${spec.type === 'integer' ? 'an integer' : 'a number'} (got "${text}")`);
  }
  if (spec.min !== undefined && value < spec.min) throw new UsageError(`--${spec.name} must be at least ${spec.min} (got ${value})`);
  return value;
}

export function renderHelp(command: Command): string {
  const specs = [...command.options, ...COMMON_OPTIONS];
  const left = specs.map((s) => `--${s.name}${s.type === 'boolean' ? '' : ` ${s.arg ?? s.type.toUpperCase()}`}`);
  const width = Math.max(...left.map((l) => l.length)) + 2;
  const lines = specs.map((s, i) => {
    const extras = [
      s.required ? 'required' : undefined,
      s.default !== undefined && s.type !== 'boolean' ? `default: ${s.default}` : undefined,
      s.env ? `env: ${s.env}` : undefined,
      s.choices ? `one of: ${s.choices.join(', ')}` : undefined,
    ].filter(Boolean);
    return `  ${left[i].padEnd(width)}${s.description}${extras.length ? ` (${extras.join('; ')})` : ''}`;
  });
  return [
    command.summary,
    '',
    'Usage',
    `  ${command.usage}`,
    '',
    'Options',
    ...lines,
    ...(command.examples.length ? ['', 'Examples', ...command.examples.map((e) => `  ${e}`)] : []),
    '',
  ].join('\n');
}
