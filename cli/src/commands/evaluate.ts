import type { Command } from '../options.js';
import { BACKBONE_OPTIONS, cacheDirOf, openBackbone } from './shared.js';
import { createProgress } from '../progress.js';
import { UsageError } from '../options.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'Evaluate unsupervised segmentation (mIoU, pixel accuracy) on a labelled dataset.',
  usage: 'fuss evaluate --data DIR --backbone ONNX --kmeans K [--fit-data DIR] [--json]',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'Labelled dataset to evaluate on (images/, labels/, dataset.json)', required: true },
    ...BACKBONE_OPTIONS,
    { name: 'kmeans', type: 'integer', arg: 'K', description: 'Raw-feature k-means baseline with K clusters', min: 1 },
    { name: 'fit-data', type: 'string', arg: 'DIR', description: 'Images to fit k-means on (default: --data)' },
    { name: 'fit-samples', type: 'integer', arg: 'N', description: 'Feature cells sampled for fitting', default: 100000, min: 1 },
    { name: 'restarts', type: 'integer', arg: 'N', description: 'k-means restarts', default: 3, min: 1 },
    { name: 'seed', type: 'integer', arg: 'S', description: 'Random seed', default: 0 },
    { name: 'json', type: 'boolean', description: 'Print the metrics as JSON on stdout' },
  ],
  examples: [
    'fuss evaluate --data ../shared/data/camvid/val --fit-data ../shared/data/camvid/train \\\n    --backbone ../shared/models/mobilenetv2-int8-features.onnx --kmeans 11 --json',
  ],
  async run(values, _positionals, io) {
    if (values.kmeans === undefined) throw new UsageError('choose what to evaluate: --kmeans K (raw-feature k-means baseline)');
    const core: typeof import('@fuss/core') = await import('@fuss/core');
    const k = values.kmeans as number;
    const evalSet = await core.openDataset(values.data as string);
    core.requireLabels(evalSet);
    const fitSet = values['fit-data'] ? await core.openDataset(values['fit-data'] as string) : evalSet;
    const backbone = await openBackbone(values, io);
    const cacheDir = cacheDirOf(values);
    const log = (line: string) => io.stderr(`${line}\n`);
    const started = performance.now();
    try {
      const fitProgress = createProgress(io, 'features (fit)', fitSet.items.length);
      const fitted = await core.fitKMeansCentroids(fitSet, backbone, {
        k,
        seed: values.seed as number,
        maxSamples: values['fit-samples'] as number,
        restarts: values.restarts as number,
        cacheDir,
        log,
        onProgress: (done) => fitProgress.update(done),
      });
      fitProgress.done(`k-means on ${fitted.samples} cells x ${fitted.channels} channels`);
      const evalProgress = createProgress(io, 'evaluate', evalSet.items.length);
      const metrics = await core.evaluateCentroids(evalSet, backbone, fitted.centroids, k, {
        cacheDir,
        log,
        onProgress: (done) => evalProgress.update(done),
      });
      evalProgress.done(`${metrics.images} images`);
      const seconds = (performance.now() - started) / 1000;
      const result = {
        mIoU: round(metrics.mIoU),
        pixelAccuracy: round(metrics.pixelAccuracy),
        perClassIoU: Object.fromEntries(Object.entries(metrics.perClassIoU).map(([name, v]) => [name, v === null ? null : round(v)])),
        images: metrics.images,
        method: `kmeans-${k}`,
        backbone: backbone.descriptor.id,
        outputs: backbone.descriptor.outputs,
        seed: values.seed,
        seconds: round(seconds),
      };
      if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
      else {
        io.stdout(`mIoU ${result.mIoU.toFixed(2)}  pixel accuracy ${result.pixelAccuracy.toFixed(2)}  (${result.images} images, ${result.method})\n`);
        for (const [name, v] of Object.entries(result.perClassIoU)) io.stdout(`  ${name.padEnd(14)} ${v === null ? '-' : v.toFixed(2)}\n`);
      }
      return 0;
    } finally {
      await backbone.close();
    }
  },
};

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
