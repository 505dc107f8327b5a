// Small datasets generated on the fly for tests: two-region images whose labels are known exactly.

import { mkdir, mkdtemp, writeFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { buildTinyCnn, buildTinyVit } from './tiny-backbones.js';

export async function makeTempDir(prefix = 'fuss-test-'): Promise<{ path: string; remove: () => Promise<void> }> {
  const path = await mkdtemp(join(tmpdir(), prefix));
  return { path, remove: () => rm(path, { recursive: true, force: true }) };
}

export interface TinyDatasetOptions {
  images?: number;
  width?: number;
  height?: number;
  labels?: boolean;
  /** Domain prefixes cycled over images, giving names like `siteA_0003.png`. */
  domains?: string[];
}

/**
 * Writes `images/` (PNG: a red-ish left part and a blue-ish right part, split at a varying column),
 * `labels/` (0 left, 1 right, 2 = ignore on a 1-pixel border) and dataset.json under `root`.
 */
export async function makeTinyDataset(root: string, options: TinyDatasetOptions = {}): Promise<void> {
  const count = options.images ?? 6;
  const width = options.width ?? 32;
  const height = options.height ?? 24;
  const domains = options.domains ?? ['siteA', 'siteB'];
  await mkdir(join(root, 'images'), { recursive: true });
  if (options.labels !== false) await mkdir(join(root, 'labels'), { recursive: true });
  for (let i = 0; i < count; i++) {
    const split = Math.round(width * (0.3 + (0.4 * i) / Math.max(1, count - 1)));
    const rgb = Buffer.alloc(width * height * 3);
    const label = Buffer.alloc(width * height);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        const p = y * width + x;
        const left = x < split;
        const noise = ((x * 7 + y * 13 + i * 5) % 11) - 5;
        rgb[p * 3] = left ? 200 + noise : 30 + noise;
        rgb[p * 3 + 1] = 60 + noise;
        rgb[p * 3 + 2] = left ? 40 + noise : 210 + noise;
        label[p] = x === 0 || y === 0 ? 2 : left ? 0 : 1;
      }
    }
    const name = `${domains[i % domains.length]}_${String(i).padStart(4, '0')}`;
    await sharp(rgb, { raw: { width, height, channels: 3 } }).png().toFile(join(root, 'images', `${name}.png`));
    if (options.labels !== false) {
      await sharp(label, { raw: { width, height, channels: 1 } }).toColourspace('b-w').png().toFile(join(root, 'labels', `${name}.png`));
    }
  }
  await writeFile(
    join(root, 'dataset.json'),
    JSON.stringify({ name: 'tiny', classes: ['warm', 'cold'], ignoreIndex: 2, domainPattern: '^([^_]+)_' }),
  );
}

/** Writes the tiny CNN and ViT backbones to `dir` and returns their paths. */
export async function writeTinyBackbones(dir: string): Promise<{ cnn: string; vit: string }> {
  await mkdir(dir, { recursive: true });
  const cnn = join(dir, 'tiny-cnn.onnx');
  const vit = join(dir, 'tiny-vit.onnx');
  await writeFile(cnn, buildTinyCnn());
  await writeFile(vit, buildTinyVit());
  return { cnn, vit };
}
