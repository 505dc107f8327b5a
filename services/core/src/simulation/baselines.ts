// The paper's non-federated baselines with the same budget of local steps as a federation of
// `rounds x localSteps`: local-only (each participant trains alone; each and the mean are reported)
// and centralized (one trainer on the union of the participants' images). The augmented views and the
// learning-rate schedule of `options` apply to them as to a federation (one run of rounds x localSteps).

import type { Backbone } from '../backbone/backbone.js';
import type { Dataset } from '../dataset/dataset.js';
import type { TrainingEngine } from '../engines/engine.js';
import type { SegmentationMetrics } from '../evaluation/evaluate.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { loadFeatureStore } from '../training/feature-store.js';
import { calibrateShifts, DEFAULT_SHIFT_QUANTILES } from '../training/shift-calibration.js';
import { trainModel } from '../training/trainer.js';
import { parseAugmentation } from '../features/views.js';
import { parseLearningRateSchedule } from '../training/lr-schedule.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { evaluateModel, meanMetrics, partitionDataset, simulationBatchOptions, type SimulationOptions } from './simulate.js';
import type { DatasetItem } from '../dataset/dataset.js';

export interface BaselineResult {
  kind: 'local' | 'centralized';
  /** Per participant for local-only; one entry for centralized. */
  runs: { clientId: string; images: number; metrics?: SegmentationMetrics; seconds: number }[];
  /** Mean over participants (local) or the single run (centralized). */
  final?: SegmentationMetrics;
}

async function trainAndEvaluate(
  items: DatasetItem[],
  evaluation: Dataset | undefined,
  backbone: Backbone,
  engine: TrainingEngine,
  options: SimulationOptions,
  seed: number,
) {
  const codeDim = options.codeDim ?? TRAINING_DEFAULTS.codeDim;
  const started = performance.now();
  const store = await loadFeatureStore(items, backbone, { cacheDir: options.cacheDir, views: parseAugmentation(options.augment ?? 'none') });
  const schedule = parseLearningRateSchedule(options.lrSchedule ?? 'constant');
  const steps = options.rounds * options.localSteps;
  const batch = simulationBatchOptions(options);
  const shifts = options.fixedShifts ?? calibrateShifts(store, batch, createRng(seed * 7919), options.shiftQuantiles ?? DEFAULT_SHIFT_QUANTILES).shifts;
  const rng = createRng(options.seed);
  const shape = { channels: store.channels, codeDim };
  const result = await trainModel(store, engine, { head: initHead(shape, rng), centroids: initCentroids(options.k, codeDim, rng) }, {
    ...batch,
    shifts,
    steps,
    k: options.k,
    codeDim,
    lambda: options.lambda ?? TRAINING_DEFAULTS.lambda,
    headLr: TRAINING_DEFAULTS.headLr,
    centroidLr: TRAINING_DEFAULTS.centroidLr,
    seed,
    ...(schedule === 'constant' ? {} : { learningRate: { schedule, offset: 0, total: steps } }),
  });
  const metrics = evaluation ? await evaluateModel(evaluation, backbone, engine, [result], options) : undefined;
  return { images: items.length, metrics, seconds: (performance.now() - started) / 1000 };
}

export async function runBaseline(
  kind: 'local' | 'centralized',
  train: Dataset,
  evaluation: Dataset | undefined,
  backbone: Backbone,
  engine: TrainingEngine,
  options: SimulationOptions,
  log: (line: string) => void = () => undefined,
): Promise<BaselineResult> {
  const groups = await partitionDataset(train, options.clients, options.partition, options.seed);
  if (kind === 'centralized') {
    const run = await trainAndEvaluate(groups.flat(), evaluation, backbone, engine, options, options.seed * 1_000_003);
    log(`centralized: ${run.images} images${run.metrics ? `, mIoU ${run.metrics.mIoU.toFixed(2)}` : ''}`);
    return { kind, runs: [{ clientId: 'all', ...run }], final: run.metrics };
  }
  const runs = [];
  for (const [i, group] of groups.entries()) {
    const run = await trainAndEvaluate(group, evaluation, backbone, engine, options, options.seed * 1_000_003 + i);
    log(`local-only participant ${i}: ${run.images} images${run.metrics ? `, mIoU ${run.metrics.mIoU.toFixed(2)}` : ''}`);
    runs.push({ clientId: `client-${i}`, ...run });
  }
  const measured = runs.map((r) => r.metrics).filter((m): m is SegmentationMetrics => m !== undefined);
  return { kind, runs, final: measured.length ? meanMetrics(measured) : undefined };
}
