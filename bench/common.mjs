// Helpers shared by the benchmark scripts: locating ../shared assets, machine description, output.

import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

const sharedRoot = () => resolve(process.env.FUSS_ASSETS ?? join(here, '..', '..', 'shared'));
const neededAssets = (root) => [join(root, 'data', 'camvid', 'train'), join(root, 'models', 'mobilenetv2-int8-features.onnx')];

/** Whether the shared assets that {@link sharedAssets} needs are there. */
export function hasSharedAssets() {
  return neededAssets(sharedRoot()).every((path) => existsSync(path));
}

/** The shared assets folder (FUSS_ASSETS, default ../shared next to the checkout); exits 1 if absent. */
export function sharedAssets() {
  const root = sharedRoot();
  for (const path of neededAssets(root)) {
    if (!existsSync(path)) {
      console.error(`error: ${path} not found; benchmarks need the shared assets (set FUSS_ASSETS to their folder)`);
      process.exit(1);
    }
  }
  return {
    root,
    train: join(root, 'data', 'camvid', 'train'),
    val: join(root, 'data', 'camvid', 'val'),
    mobilenet: join(root, 'models', 'mobilenetv2-int8-features.onnx'),
  };
}

// Vector extensions that change which onnxruntime (MLAS) kernels run, and so the last bits of float results: runs on
// machines that differ here need not agree bit for bit (bench/RESULTS.md, 2026-12-08).
const SIMD_FLAGS = ['avx2', 'fma', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'avx_vnni', 'amx_tile'];

/** The CPU's vector extensions among SIMD_FLAGS, from /proc/cpuinfo (undefined where there is none). */
function simdFlags() {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    const flags = new Set(line?.split(':')[1]?.trim().split(/\s+/) ?? []);
    return SIMD_FLAGS.filter((f) => flags.has(f));
  } catch {
    return undefined;
  }
}

export function machine() {
  const list = cpus();
  return { cpu: list[0]?.model ?? 'unknown', cores: list.length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, simd: simdFlags() };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

/** Prints a fixed-width table. rows: array of objects with the same keys. */
export function printTable(rows) {
  const keys = Object.keys(rows[0]);
  const widths = keys.map((k) => Math.max(k.length, ...rows.map((r) => String(r[k]).length)));
  const line = (cells) => cells.map((c, i) => String(c).padEnd(widths[i])).join('  ');
  console.log(line(keys));
  console.log(line(widths.map((w) => '-'.repeat(w))));
  for (const r of rows) console.log(line(keys.map((k) => r[k])));
}

/** Writes JSON results into bench/<name>/out/results.json and returns the path. */
export function writeResults(name, data) {
  const dir = join(here, name, 'out');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, 'results.json');
  writeFileSync(path, `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), ...data }, null, 2)}\n`);
  return path;
}
