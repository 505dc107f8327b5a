import type { Command } from '../options.js';
import { BACKBONE_OPTIONS, cacheDirOf, openBackbone } from './shared.js';
import { createProgress } from '../progress.js';

export const featuresCommand: Command = {
  name: 'features',
  summary: 'Extract backbone features of a folder of images into the feature cache.',
  usage: 'fuss features --data DIR --backbone ONNX [--cache DIR] [--json]',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'Dataset folder (images/ or a folder of images)', required: true },
    ...BACKBONE_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print a JSON summary on stdout' },
  ],
  examples: ['fuss features --data ../shared/data/camvid/train --backbone ../shared/models/mobilenetv2-int8-features.onnx'],
  async run(values, _positionals, io) {
    const core = await import('@fuss/core');
    const dataset = await core.openDataset(values.data as string);
    const backbone = await openBackbone(values, io);
    const progress = createProgress(io, 'features', dataset.items.length);
    const counts = { hit: 0, computed: 0, recomputed: 0 };
    let shape = '';
    const started = performance.now();
    try {
      for await (const result of core.extractFeatures(dataset.items, backbone, {
        cacheDir: cacheDirOf(values),
        log: (line) => io.stderr(`${line}\n`),
      })) {
        counts[result.source]++;
        shape = `${result.features.channels}x${result.features.height}x${result.features.width}`;
        progress.update(counts.hit + counts.computed + counts.recomputed);
      }
    } finally {
      await backbone.close();
    }
    const seconds = (performance.now() - started) / 1000;
    progress.done(`${dataset.items.length} images (${counts.computed + counts.recomputed} computed, ${counts.hit} cached)`);
    const summary = {
      images: dataset.items.length,
      computed: counts.computed,
      recomputed: counts.recomputed,
      cached: counts.hit,
      featureShape: shape,
      backbone: backbone.descriptor.id,
      backboneSha256: backbone.descriptor.sha256,
      cache: cacheDirOf(values) ?? null,
      seconds: Number(seconds.toFixed(3)),
    };
    io.stdout(values.json ? `${JSON.stringify(summary)}\n` : `${summary.images} images, features ${shape}, ${summary.computed + summary.recomputed} computed, ${summary.cached} from cache, ${seconds.toFixed(1)}s\n`);
    return 0;
  },
};
