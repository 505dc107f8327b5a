import type { Command } from '../options.js';
import { BACKBONE_OPTIONS, cacheDirOf, openBackbone, resolveCliDevice } from './shared.js';
import { createProgress } from '../progress.js';
import { UsageError } from '../options.js';

export const evaluateCommand: Command = {
  name: 'evaluate',
  summary: 'Evaluate unsupervised segmentation (mIoU, pixel accuracy) on a labelled dataset.',
  usage: 'fuss evaluate --data DIR --backbone ONNX (--kmeans K [--fit-data DIR] | --model FILE) [--refine none|crf] [--json]',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'Labelled dataset to evaluate on (images/, labels/, dataset.json)', required: true },
    ...BACKBONE_OPTIONS,
    { name: 'kmeans', type: 'integer', arg: 'K', description: 'Raw-feature k-means baseline with K clusters', min: 1 },
    { name: 'model', type: 'string', arg: 'FILE', description: 'Evaluate a trained model (safetensors from fuss train)' },
    { name: 'fit-data', type: 'string', arg: 'DIR', description: 'Images to fit k-means on (default: --data)' },
    { name: 'fit-samples', type: 'integer', arg: 'N', description: 'Feature cells sampled for fitting', default: 100000, min: 1 },
    { name: 'restarts', type: 'integer', arg: 'N', description: 'k-means restarts', default: 3, min: 1 },
    { name: 'seed', type: 'integer', arg: 'S', description: 'Random seed', default: 0 },
    { name: 'refine', type: 'string', arg: 'MODE', description: 'Refine predictions before scoring: crf (dense CRF on the image, as STEGO\'s evaluation)', default: 'none', choices: ['none', 'crf'] },
    { name: 'crf-working-pixels', type: 'integer', arg: 'N', description: 'With --refine crf: the CRF runs on the image box-downsampled to at most N pixels (default 8000)', min: 1 },
    { name: 'json', type: 'boolean', description: 'Print the metrics as JSON on stdout' },
  ],
  examples: [
    'fuss evaluate --data ../shared/data/camvid/val --fit-data ../shared/data/camvid/train \\\n    --backbone ../shared/models/mobilenetv2-int8-features.onnx --kmeans 11 --json',
    'fuss evaluate --data ../shared/data/camvid/val --backbone ../shared/models/mobilenetv2-int8-features.onnx \\\n    --model models/camvid.safetensors --json',
    'fuss evaluate ... --model models/camvid.safetensors --refine crf',
  ],
  async run(values, _positionals, io) {
    if ((values.kmeans === undefined) === (values.model === undefined)) {
      throw new UsageError('choose what to evaluate: --kmeans K (raw-feature k-means baseline) or --model FILE');
    }
    const core: typeof import('@fuss/core') = await import('@fuss/core');
    const evalSet = await core.openDataset(values.data as string);
    core.requireLabels(evalSet);
    const device = await resolveCliDevice(values, io);
    const backbone = await openBackbone(values, io, device);
    const cacheDir = cacheDirOf(values);
    const log = (line: string) => io.stderr(`${line}\n`);
    const started = performance.now();
    const disposers: (() => Promise<void>)[] = [() => backbone.close()];
    try {
      let centroids: Float32Array;
      let k: number;
      let method: string;
      let codes: import('@fuss/core').CodeFunction | undefined;
      if (values.model !== undefined) {
        const path = values.model as string;
        const { readFile } = await import('node:fs/promises');
        let bytes: Uint8Array;
        try {
          bytes = await readFile(path);
        } catch (err) {
          throw new core.FussError(`cannot read model ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
        }
        const model = core.decodeModel(bytes, { backboneSha256: backbone.descriptor.sha256, featureKey: core.featureConfigKey(backbone.descriptor) }, path);
        const engine = await core.createEngine('onnx', { threads: values.threads as number, device });
        disposers.push(() => engine.dispose());
        centroids = model.centroids;
        k = model.k;
        method = `model ${path}`;
        codes = core.headCodeFunction(engine, model.head, model.channels, model.codeDim);
      } else {
        k = values.kmeans as number;
        const fitSet = values['fit-data'] ? await core.openDataset(values['fit-data'] as string) : evalSet;
        const fitProgress = createProgress(io, 'features (fit)', fitSet.items.length);
        const fitted = await core.fitKMeansCentroids(fitSet, backbone, {
          k,
          seed: values.seed as number,
          maxSamples: values['fit-samples'] as number,
          restarts: values.restarts as number,
          threads: values.threads as number,
          cacheDir,
          log,
          onProgress: (done) => fitProgress.update(done),
        });
        fitProgress.done(`k-means on ${fitted.samples} cells x ${fitted.channels} channels`);
        centroids = fitted.centroids;
        method = `kmeans-${k}`;
      }
      const evalProgress = createProgress(io, 'evaluate', evalSet.items.length);
      const metrics = await core.evaluateCentroids(evalSet, backbone, centroids, k, {
        cacheDir,
        log,
        codes,
        refine: values.refine as 'none' | 'crf',
        crf: { workingPixels: values['crf-working-pixels'] as number | undefined },
        onProgress: (done) => evalProgress.update(done),
      });
      evalProgress.done(`${metrics.images} images`);
      const seconds = (performance.now() - started) / 1000;
      const result = {
        mIoU: round(metrics.mIoU),
        pixelAccuracy: round(metrics.pixelAccuracy),
        perClassIoU: Object.fromEntries(Object.entries(metrics.perClassIoU).map(([name, v]) => [name, v === null ? null : round(v)])),
        images: metrics.images,
        method,
        refine: values.refine,
        backbone: backbone.descriptor.id,
        outputs: backbone.descriptor.outputs,
        seed: values.seed,
        seconds: round(seconds),
      };
      if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
      else {
        io.stdout(`mIoU ${result.mIoU.toFixed(2)}  pixel accuracy ${result.pixelAccuracy.toFixed(2)}  (${result.images} images, ${result.method}${values.refine === 'crf' ? ', CRF-refined' : ''})\n`);
        for (const [name, v] of Object.entries(result.perClassIoU)) io.stdout(`  ${name.padEnd(14)} ${v === null ? '-' : v.toFixed(2)}\n`);
      }
      return 0;
    } finally {
      for (const dispose of disposers) await dispose();
    }
  },
};

function round(value: number): number {
  return Math.round(value * 100) / 100;
}
