// `fuss doctor`: what this machine offers FUSS. Node and package versions, each onnxruntime execution
// provider (a tiny session is actually created and run on it), the TensorFlow.js backends, sharp, the
// Chromium of the browser tests and the database `fuss server` would use. Every check reports
// `{ name, available, reason }`; nothing here changes the machine.

import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import type { Command } from '../options.js';

export interface Check {
  name: string;
  available: boolean;
  /** Why not, when not available. */
  reason?: string;
  /** Version or location, when available. */
  detail?: string;
}

export interface DoctorReport {
  fuss: string;
  node: string;
  platform: string;
  packages: Record<string, string | null>;
  providers: Check[];
  tfjs: Check[];
  sharp: Check;
  chromium: Check;
  database: Check & { kind?: 'postgres' | 'pglite' };
}

const requireHere = createRequire(import.meta.url);

/** The package.json of an installed package (walking up from its entry when `exports` hides package.json). */
function packageJsonOf(name: string): { version?: string } | undefined {
  try {
    return JSON.parse(readFileSync(requireHere.resolve(`${name}/package.json`), 'utf8'));
  } catch {
    try {
      let dir = dirname(requireHere.resolve(name));
      while (dir !== dirname(dir)) {
        const candidate = join(dir, 'package.json');
        if (existsSync(candidate)) {
          const json = JSON.parse(readFileSync(candidate, 'utf8'));
          if (json.name === name) return json;
        }
        dir = dirname(dir);
      }
    } catch {
      return undefined;
    }
  }
  return undefined;
}

const PACKAGES = ['onnxruntime-node', '@tensorflow/tfjs', '@tensorflow/tfjs-backend-wasm', '@tensorflow/tfjs-node', '@tensorflow/tfjs-node-gpu', 'sharp', '@electric-sql/pglite', 'playwright-core'];

function reasonOf(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

async function importCheck(name: string, label: string, pkg: string): Promise<Check> {
  if (!packageJsonOf(pkg)) return { name, available: false, reason: `${pkg} is not installed` };
  try {
    const specifier: string = pkg; // a variable: optional packages have no types
    await import(specifier);
    return { name, available: true, detail: `${label} ${packageJsonOf(pkg)?.version ?? ''}`.trim() };
  } catch (err) {
    return { name, available: false, reason: `${pkg} failed to load: ${reasonOf(err)}` };
  }
}

async function sharpCheck(): Promise<Check> {
  try {
    const { default: sharp } = await import('sharp');
    await sharp({ create: { width: 2, height: 2, channels: 3, background: '#808080' } }).png().toBuffer();
    return { name: 'sharp', available: true, detail: `sharp ${packageJsonOf('sharp')?.version}, libvips ${sharp.versions.vips}` };
  } catch (err) {
    return { name: 'sharp', available: false, reason: reasonOf(err) };
  }
}

function chromiumCheck(env: NodeJS.ProcessEnv): Check {
  const path = env.CHROMIUM_PATH ?? '/usr/bin/chromium';
  if (!existsSync(path)) return { name: 'chromium', available: false, reason: `${path} not found (apt-get install chromium; or set CHROMIUM_PATH)` };
  const run = spawnSync(path, ['--version'], { encoding: 'utf8', timeout: 15_000 });
  const version = `${run.stdout ?? ''}`.split('\n').find((l) => /chrom/i.test(l))?.trim();
  if (run.error || !version) return { name: 'chromium', available: false, reason: `${path} --version failed: ${run.error?.message ?? run.stderr.trim()}` };
  return { name: 'chromium', available: true, detail: `${version} (${path})` };
}

/** The database `fuss server` would open, from the same configuration code as the server. */
async function databaseCheck(env: NodeJS.ProcessEnv, cwd: string): Promise<DoctorReport['database']> {
  let config: { databaseUrl?: string; pgliteDir: string };
  try {
    const { loadConfig } = await import('@fuss/aggregator');
    config = loadConfig(env);
  } catch (err) {
    return { name: 'database', available: false, reason: `cannot read the server configuration: ${reasonOf(err)}` };
  }
  if (config.databaseUrl) {
    let target = 'DATABASE_URL (not a URL)';
    try {
      const url = new URL(config.databaseUrl);
      target = `${url.protocol}//${url.username ? `${url.username}@` : ''}${url.host}${url.pathname}`; // never the password
    } catch {
      return { name: 'database', kind: 'postgres', available: false, reason: 'DATABASE_URL is not a URL' };
    }
    return { name: 'database', kind: 'postgres', available: true, detail: `Postgres at ${target} (DATABASE_URL)` };
  }
  const dir = resolve(cwd, config.pgliteDir);
  return { name: 'database', kind: 'pglite', available: true, detail: `embedded PGlite in ${dir}${existsSync(dir) ? '' : ' (created on first start)'}` };
}

export async function collectDoctorReport(env: NodeJS.ProcessEnv, cwd: string): Promise<DoctorReport> {
  const { probeAllProviders } = await import('@fuss/core');
  const providers = (await probeAllProviders()).map((s): Check => (s.available ? { name: s.name, available: true } : { name: s.name, available: false, reason: s.reason }));
  const tfjs = [
    await importCheck('tensorflow (gpu)', 'tfjs-node-gpu', '@tensorflow/tfjs-node-gpu'),
    await importCheck('tensorflow (cpu)', 'tfjs-node', '@tensorflow/tfjs-node'),
    await importCheck('wasm', 'tfjs-backend-wasm', '@tensorflow/tfjs-backend-wasm'),
  ];
  return {
    fuss: JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')).version,
    node: process.version,
    platform: `${process.platform}-${process.arch}`,
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageJsonOf(name)?.version ?? null])),
    providers,
    tfjs,
    sharp: await sharpCheck(),
    chromium: chromiumCheck(env),
    database: await databaseCheck(env, cwd),
  };
}

function renderReport(r: DoctorReport): string {
  const line = (c: Check) => `  ${c.name.padEnd(18)}${c.available ? `yes${c.detail ? `  ${c.detail}` : ''}` : `no   ${c.reason}`}`;
  const packages = Object.entries(r.packages).map(([name, version]) => `  ${name.padEnd(31)}${version ?? 'not installed'}`);
  return [
    `fuss ${r.fuss}, Node ${r.node}, ${r.platform}`,
    '',
    'Packages',
    ...packages,
    '',
    'onnxruntime execution providers (--device)',
    ...r.providers.map(line),
    '',
    'TensorFlow.js backends (--engine tfjs)',
    ...r.tfjs.map(line),
    '',
    'Other',
    line(r.sharp),
    line(r.chromium),
    line(r.database),
    '',
  ].join('\n');
}

export const doctorCommand: Command = {
  name: 'doctor',
  summary: 'Check this machine: versions, onnxruntime execution providers (cpu, webgpu, cuda), tfjs backends, sharp, Chromium, database.',
  usage: 'fuss doctor [--json]',
  options: [{ name: 'json', type: 'boolean', description: 'Print the report as JSON' }],
  examples: ['fuss doctor', 'fuss doctor --json | jq .providers'],
  async run(values, _positionals, io) {
    const report = await collectDoctorReport(io.env, io.cwd);
    io.stdout(values.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
    // Only a machine where onnxruntime cannot even run on the CPU fails: everything else is optional.
    return report.providers.find((p) => p.name === 'cpu')?.available ? 0 : 1;
  },
};
