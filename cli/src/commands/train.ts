import { writeFile, readFile, mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { BACKBONE_OPTIONS, cacheDirOf, openBackbone, resolveCliDevice } from './shared.js';
import { createProgress } from '../progress.js';

export const trainCommand: Command = {
  name: 'train',
  summary: 'Train the segmentation head and centroids without labels (centralized, or one participant locally).',
  usage: 'fuss train --data DIR --backbone ONNX --k K --steps N --out model.safetensors [--engine auto|onnx|tfjs] [--seed S]',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'Training images (dataset folder or a folder of images); labels are never read', required: true },
    ...BACKBONE_OPTIONS,
    { name: 'k', type: 'integer', arg: 'K', description: 'Number of centroids (classes)', required: true, min: 1 },
    { name: 'steps', type: 'integer', arg: 'N', description: 'Training steps', default: 1000, min: 0 },
    { name: 'epochs', type: 'number', arg: 'E', description: 'Train for E passes over the images instead of --steps (each step uses --queries images)', min: 0 },
    { name: 'out', type: 'string', arg: 'FILE', description: 'Where to write the model (safetensors)', required: true },
    { name: 'resume', type: 'string', arg: 'FILE', description: 'Start from this model instead of a fresh head (optimiser state restarts)' },
    { name: 'engine', type: 'string', arg: 'NAME', description: 'Training engine', default: 'auto', choices: ['auto', 'onnx', 'tfjs'], env: 'FUSS_ENGINE' },
    { name: 'seed', type: 'integer', arg: 'S', description: 'Random seed', default: 0 },
    { name: 'sampling', type: 'string', arg: 'MODE', description: 'Correspondence cells: sampled (11x11 random cells, STEGO) or full grid', default: 'sampled', choices: ['sampled', 'full'] },
    { name: 'queries', type: 'integer', arg: 'N', description: 'Query images per step', default: 8, min: 1 },
    { name: 'negatives', type: 'integer', arg: 'N', description: 'Random negative supports per query', default: 5, min: 0 },
    { name: 'code-dim', type: 'integer', arg: 'D', description: 'Code dimension of the head', default: 70, min: 1 },
    { name: 'lambda', type: 'number', arg: 'L', description: 'Centroid repulsion weight of Eq. 5', default: 0, min: 0 },
    { name: 'shifts', type: 'string', arg: 'MODE', description: 'Correspondence shifts: "calibrate" (quantiles of this data\'s feature correlations), "stego" (0.458,0.175,0.314, tuned for DINO) or intra,inter,neg', default: 'calibrate' },
    { name: 'shift-quantiles', type: 'string', arg: 'I,P,N', description: 'Quantiles used by --shifts calibrate', default: '0.7,0.7,0.85' },
    { name: 'no-centre', type: 'boolean', description: 'Do not subtract the mean feature before the feature cosine' },
    { name: 'head-lr', type: 'number', arg: 'LR', description: 'Adam learning rate of the head', default: 5e-4, min: 0 },
    { name: 'centroid-lr', type: 'number', arg: 'LR', description: 'Adam learning rate of the centroids', default: 5e-3, min: 0 },
    { name: 'json', type: 'boolean', description: 'Print a JSON summary on stdout' },
  ],
  examples: [
    'fuss train --data ../shared/data/camvid/train --backbone ../shared/models/mobilenetv2-int8-features.onnx \\\n    --k 11 --steps 1000 --out models/camvid.safetensors',
  ],
  async run(values, _positionals, io) {
    const core: typeof import('@fuss/core') = await import('@fuss/core');
    const log = (line: string) => io.stderr(`${line}\n`);
    const shiftMode = values.shifts as string;
    const fixedShifts =
      shiftMode === 'calibrate' ? undefined : shiftMode === 'stego' ? { ...core.TRAINING_DEFAULTS.stegoShifts } : parseTerms(shiftMode, '--shifts');
    const quantiles = parseTerms(values['shift-quantiles'] as string, '--shift-quantiles');
    const dataset = await core.openDataset(values.data as string);
    const device = await resolveCliDevice(values, io);
    const backbone = await openBackbone(values, io, device);
    const featureKey = core.featureConfigKey(backbone.descriptor);
    const engine = await core.createEngine(values.engine as string, { threads: values.threads as number, device, log });
    try {
      const progressFeatures = createProgress(io, 'features', dataset.items.length);
      const store = await core.loadFeatureStore(dataset.items, backbone, { cacheDir: cacheDirOf(values), log, onProgress: (done) => progressFeatures.update(done) });
      progressFeatures.done(`${store.images.length} images, ${store.channels} channels`);
      const k = values.k as number;
      const codeDim = values['code-dim'] as number;
      const rng = core.createRng(values.seed as number);
      let start = { head: core.initHead({ channels: store.channels, codeDim }, rng), centroids: core.initCentroids(k, codeDim, rng) };
      let startSteps = 0;
      if (values.resume) {
        const model = core.decodeModel(await readFile(values.resume as string), { backboneSha256: backbone.descriptor.sha256, featureKey, channels: store.channels, codeDim, k }, values.resume as string);
        start = { head: model.head, centroids: model.centroids };
        startSteps = Number(model.info?.steps ?? 0);
        log(`resuming from ${values.resume} (${startSteps} steps)`);
      }
      const batchOptions = {
        queries: values.queries as number,
        negatives: values.negatives as number,
        sampling: values.sampling as 'sampled' | 'full',
        samplePoints: core.TRAINING_DEFAULTS.samplePoints,
        weights: core.TRAINING_DEFAULTS.weights,
        shifts: fixedShifts ?? core.TRAINING_DEFAULTS.stegoShifts,
        centre: !values['no-centre'],
        dropout: core.TRAINING_DEFAULTS.dropout,
      };
      if (!fixedShifts) {
        const calibration = core.calibrateShifts(store, batchOptions, core.createRng((values.seed as number) + 7919), quantiles);
        batchOptions.shifts = calibration.shifts;
        const f = (v: number) => v.toFixed(3);
        log(`shifts calibrated at quantiles ${quantiles.intra}/${quantiles.inter}/${quantiles.neg}: intra ${f(calibration.shifts.intra)}, inter ${f(calibration.shifts.inter)}, neg ${f(calibration.shifts.neg)}`);
      }
      const steps = values.epochs === undefined ? (values.steps as number) : Math.ceil(((values.epochs as number) * store.images.length) / batchOptions.queries);
      const options = {
        ...batchOptions,
        steps,
        k,
        codeDim,
        lambda: values.lambda as number,
        headLr: values['head-lr'] as number,
        centroidLr: values['centroid-lr'] as number,
        seed: (values.seed as number) + startSteps,
      };
      const progress = createProgress(io, 'train', options.steps);
      const started = performance.now();
      let last: import('@fuss/core').StepEvent | undefined;
      const save = async (head: import('@fuss/core').HeadParams, centroids: Float32Array, steps: number) => {
        const bytes = core.encodeModel({
          head,
          centroids,
          channels: store.channels,
          codeDim,
          k,
          backbone: { id: backbone.descriptor.id, sha256: backbone.descriptor.sha256, featureKey },
          round: 0,
          version: 0,
          info: { ...options, steps: startSteps + steps, engine: engine.name, device: engine.device, images: store.images.length, finalLoss: last?.loss ?? null, clusterEntropy: last?.clusterEntropy ?? null },
        });
        await mkdir(dirname(values.out as string), { recursive: true });
        await writeFile(values.out as string, bytes);
      };
      let result;
      try {
        result = await core.trainModel(store, engine, start, options, (event) => {
          last = event;
          progress.update(event.step, `loss ${event.loss.toFixed(4)} entropy ${event.clusterEntropy.toFixed(2)}`);
        });
      } catch (err) {
        if (err instanceof core.TrainingDivergedError) {
          await save(err.lastGood.head, err.lastGood.centroids, err.lastGood.steps);
          throw new core.FussError(`${err.message}; wrote it to ${values.out}`);
        }
        throw err;
      }
      await save(result.head, result.centroids, result.steps);
      const seconds = (performance.now() - started) / 1000;
      progress.done(`${result.steps} steps`);
      const summary = {
        out: values.out,
        steps: startSteps + result.steps,
        engine: engine.name,
        device: engine.device,
        finalLoss: last?.loss ?? null,
        clusterEntropy: last?.clusterEntropy ?? null,
        msPerStep: result.steps ? Number(((seconds * 1000) / result.steps).toFixed(1)) : null,
        seconds: Number(seconds.toFixed(2)),
      };
      io.stdout(values.json ? `${JSON.stringify(summary)}\n` : `wrote ${summary.out} after ${summary.steps} steps (${summary.msPerStep} ms/step, ${engine.name} on ${engine.device}); final loss ${summary.finalLoss?.toFixed(4)}, assignment entropy ${summary.clusterEntropy?.toFixed(2)}\n`);
      return 0;
    } finally {
      await engine.dispose();
      await backbone.close();
    }
  },
};

function parseTerms(text: string, flag: string) {
  const parts = text.split(',').map(Number);
  if (parts.length !== 3 || parts.some((v) => !Number.isFinite(v))) {
    throw new UsageError(`${flag} must be three numbers intra,inter,neg${flag === '--shifts' ? ', "calibrate" or "stego"' : ''} (got "${text}")`);
  }
  return { intra: parts[0], inter: parts[1], neg: parts[2] };
}
