// `fuss classes show|set`: the names and colours of a federation's classes on a server, and the
// classes file (`{ "classes": [{ "id", "name", "colour"? }] }`) that `fuss label` and local
// `fuss segment` use.

import { readFile } from 'node:fs/promises';
import type { ClassLabel } from '@fuss/core';
import type { CliIo } from '../io.js';
import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { ADMIN_TOKEN_OPTION, RETRY_OPTIONS, SERVER_OPTION, withApi } from './remote.js';

const FEDERATION_OPTION = { name: 'federation', type: 'string', arg: 'ID', description: 'Federation id', required: true } as const;

export const classesShowCommand: Command = {
  name: 'classes show',
  summary: "Show the names and colours of a federation's classes.",
  usage: 'fuss classes show --server URL --federation ID [--token TOKEN] [--json]',
  options: [
    SERVER_OPTION,
    { name: 'token', type: 'string', arg: 'TOKEN', description: 'Participant or admin token', env: 'FUSS_TOKEN' },
    FEDERATION_OPTION,
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print { classes } as JSON' },
  ],
  examples: ['fuss classes show --server http://127.0.0.1:8080 --federation 6f1c...'],
  async run(values, _positionals, io) {
    return withApi(values, (values.token ?? io.env.FUSS_ADMIN_TOKEN) as string | undefined, io, async (api) => {
      const classes = await api.getClasses(values.federation as string);
      printClasses(io, classes, values.json === true);
      return 0;
    });
  },
};

export const classesSetCommand: Command = {
  name: 'classes set',
  summary: "Name a federation's classes (admin): replaces every name and colour at once.",
  usage: 'fuss classes set --server URL --federation ID (--file FILE | --names "ID=NAME[:#rrggbb],...") [--json]',
  options: [
    SERVER_OPTION,
    ADMIN_TOKEN_OPTION,
    FEDERATION_OPTION,
    { name: 'file', type: 'string', arg: 'FILE', description: 'JSON { "classes": [{ "id", "name", "colour"? }] } (fuss label --out writes one)' },
    { name: 'names', type: 'string', arg: 'LIST', description: 'Comma-separated ID=NAME or ID=NAME:#rrggbb, e.g. "0=sky,3=road:#804080"' },
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print the stored { classes } as JSON' },
  ],
  examples: ['fuss classes set --server http://127.0.0.1:8080 --federation 6f1c... --names "0=sky,1=building,3=road:#804080"', 'fuss classes set ... --file classes.json'],
  async run(values, _positionals, io) {
    if ((values.file === undefined) === (values.names === undefined)) throw new UsageError('give the names with --file FILE or with --names "ID=NAME,..."');
    const classes = values.file !== undefined ? await readClassesFile(values.file as string) : parseNames(values.names as string);
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      printClasses(io, await api.setClasses(values.federation as string, classes), values.json === true);
      return 0;
    });
  },
};

/** Reads a classes file: `{ "classes": [...] }` or a bare array. Names are checked by the caller (server or core). */
export async function readClassesFile(path: string): Promise<ClassLabel[]> {
  const text = await readFile(path, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read ${path}: ${err.code === 'ENOENT' ? 'no such file' : err.message}`);
  });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new Error(`${path} is not JSON: ${(err as Error).message}`);
  }
  const classes = Array.isArray(parsed) ? parsed : (parsed as { classes?: unknown } | null)?.classes;
  if (!Array.isArray(classes)) throw new Error(`${path} must hold { "classes": [{ "id", "name", "colour"? }] }`);
  return classes as ClassLabel[];
}

/** "0=sky,3=road:#804080" -> labels. */
export function parseNames(text: string): ClassLabel[] {
  return text.split(',').map((part) => part.trim()).filter(Boolean).map((part) => {
    const match = /^(\d+)=([^:]+?)(?::(#[0-9a-fA-F]{6}))?$/.exec(part);
    if (!match) throw new UsageError(`--names takes ID=NAME or ID=NAME:#rrggbb, comma-separated (got "${part}")`);
    return match[3] ? { id: Number(match[1]), name: match[2], colour: match[3] } : { id: Number(match[1]), name: match[2] };
  });
}

export function printClasses(io: CliIo, classes: readonly ClassLabel[], json: boolean): void {
  if (json) {
    io.stdout(`${JSON.stringify({ classes })}\n`);
    return;
  }
  if (classes.length === 0) io.stdout('no class has a name yet (fuss classes set, or fuss label)\n');
  for (const c of classes) io.stdout(`${String(c.id).padStart(4)}  ${c.name}${c.colour ? `  ${c.colour}` : ''}\n`);
}
