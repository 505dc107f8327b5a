// In-process federation simulator (research harness): partitions a dataset among N participants,
// runs rounds of local training from the global model, aggregates the updates with a strategy and
// evaluates the global model after every round. Participants' data never mixes: each has its own
// feature store, statistics (mean feature, neighbours) and calibrated shifts; only updates cross.

import type { Backbone } from '../backbone/backbone.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import { dominantClass, readLabelMap, type Dataset, type DatasetItem } from '../dataset/dataset.js';
import { ConfigError } from '../errors.js';
import type { HeadParams, RegularizerScope, TrainingEngine } from '../engines/engine.js';
import { evaluateCentroids, type SegmentationMetrics } from '../evaluation/evaluate.js';
import { cloneHead, initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { partition, type PartitionSpec } from '../partition/partition.js';
import { createStrategy, parseRobustRule, validateUpdate } from '../strategies/index.js';
import { AggregationError } from '../strategies/aggregation-error.js';
import { applyAttack, type Attack } from './attacks.js';
import type { AggregationModules } from '../strategies/strategy.js';
import type { ClientUpdate } from '../strategies/update.js';
import type { BatchOptions, PairTerms } from '../training/batch-sampler.js';
import { loadFeatureStore, type FeatureStore } from '../training/feature-store.js';
import { headCodeFunction } from '../training/head-codes.js';
import { trainModel } from '../training/trainer.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { calibrateParticipantShifts, localRoundTrainerOptions, participantBatchOptions, type Regularizer } from './participant.js';
import { aggregationSeed, participantClientId } from './seeds.js';

export interface SimulationOptions {
  clients: number;
  partition: PartitionSpec;
  strategy: string;
  modules: AggregationModules;
  regularizer: Regularizer;
  /** Parameters the regularizer acts on (the reference code: the nonlinear branch). */
  regularizerScope: RegularizerScope;
  rounds: number;
  localSteps: number;
  k: number;
  seed: number;
  codeDim?: number;
  /** Batch settings; shifts are calibrated per participant unless `fixedShifts` is given. */
  batch?: Partial<Omit<BatchOptions, 'shifts'>>;
  fixedShifts?: PairTerms;
  shiftQuantiles?: PairTerms;
  lambda?: number;
  cacheDir?: string;
  /** Evaluate every this many rounds (and always after the last). Default 1. */
  evalEvery?: number;
  /** Robust aggregation rule (strategies/robust.ts); default `clip`, as a federation's. */
  robust?: string;
  /** Largest sample count an update may claim, as a federation's `maxSamples` (default 1 000 000). */
  maxSamples?: number;
  /** The first `attackers` participants send `attack`'s transform of their honest update. */
  attack?: { attackers: number; attack: Attack };
}

/** Default robust rule of simulations and federations. */
export const DEFAULT_ROBUST_RULE = 'clip';
/** Default largest sample count per participant. */
export const DEFAULT_MAX_SAMPLES = 1_000_000;

export interface RoundRecord {
  round: number;
  /** Metrics of the global model on the evaluation set (mean over participants when they keep their heads). */
  metrics?: SegmentationMetrics;
  /** Mean final local loss and assignment entropy over participants. */
  meanLoss: number;
  meanEntropy: number;
  trainSeconds: number;
  aggregateSeconds: number;
  evaluateSeconds: number;
  /** Updates refused before aggregation, as the server would refuse their upload (NaN, too many samples). */
  refused?: { clientId: string; reason: string }[];
  /** What the robust rule did: clipped, dropped (Krum) or trimmed participants. */
  robust?: { clipped?: string[]; dropped?: string[]; trimmedPooledRows?: Record<string, number> };
  /** With module C: `permutation[id]` is the merged centroid that became class id `id` (stable ids). */
  permutation?: number[];
}

export interface SimulationResult {
  partition: { clientId: string; images: number; domains: string[] }[];
  rounds: RoundRecord[];
  final?: SegmentationMetrics;
  global: { head: HeadParams; centroids: Float32Array };
  clientHeads?: HeadParams[];
  clientCentroids?: Float32Array[];
}

export interface SimulationHooks {
  /** After every round, with the round's global model (safe to keep: never mutated afterwards). */
  onRound?: (record: RoundRecord, global: { head: HeadParams; centroids: Float32Array }) => void | Promise<void>;
  log?: (line: string) => void;
}

/** Splits the training items among participants (Dirichlet reads labels for dominant classes only). */
export async function partitionDataset(dataset: Dataset, clients: number, spec: PartitionSpec, seed: number): Promise<DatasetItem[][]> {
  const items = [];
  for (const item of dataset.items) {
    let dominant: number | undefined;
    if (spec.kind === 'dirichlet') {
      if (!dataset.info || !item.labelPath) throw new ConfigError(`the dirichlet partition needs labels (dominant class per image); ${item.imagePath} has none`);
      dominant = dominantClass(await readLabelMap(item, dataset.info), dataset.info);
    }
    items.push({ id: item.id, domain: item.domain, dominantClass: dominant });
  }
  const ids = partition(items, clients, spec, createRng(seed));
  const byId = new Map(dataset.items.map((item) => [item.id, item]));
  return ids.map((group) => group.map((id) => byId.get(id)!));
}

/** Batch settings of a simulation: paper defaults, overridden by `options.batch` and `fixedShifts`. */
export function simulationBatchOptions(options: SimulationOptions): BatchOptions {
  return participantBatchOptions(options.fixedShifts ?? TRAINING_DEFAULTS.stegoShifts, options.batch);
}

/**
 * Runs a federation of `options.clients` participants over `train`, evaluating on `evaluation` after
 * every round when given.
 */
export async function simulateFederation(
  train: Dataset,
  evaluation: Dataset | undefined,
  backbone: Backbone,
  engine: TrainingEngine,
  options: SimulationOptions,
  hooks: SimulationHooks = {},
): Promise<SimulationResult> {
  const log = hooks.log ?? (() => undefined);
  const codeDim = options.codeDim ?? TRAINING_DEFAULTS.codeDim;
  const strategy = createStrategy(options.strategy);
  const robust = parseRobustRule(options.robust ?? DEFAULT_ROBUST_RULE);
  const maxSamples = options.maxSamples ?? DEFAULT_MAX_SAMPLES;
  const attackers = options.attack?.attackers ?? 0;
  if (attackers > options.clients) throw new ConfigError(`${attackers} attackers among ${options.clients} participants`);
  const groups = await partitionDataset(train, options.clients, options.partition, options.seed);
  const stores: FeatureStore[] = [];
  const shifts: PairTerms[] = [];
  for (const [i, group] of groups.entries()) {
    stores.push(await loadFeatureStore(group, backbone, { cacheDir: options.cacheDir }));
    const calibrated = options.fixedShifts ?? calibrateParticipantShifts(stores[i], simulationBatchOptions(options), options.seed, i, options.shiftQuantiles);
    shifts.push(calibrated);
    log(`participant ${i}: ${group.length} images, shifts ${Object.values(calibrated).map((v) => v.toFixed(3)).join('/')}`);
  }
  const channels = stores[0].channels;
  const shape = { channels, codeDim };
  const initRng = createRng(options.seed);
  let global = { head: initHead(shape, initRng), centroids: initCentroids(options.k, codeDim, initRng) };
  const clientHeads = groups.map(() => cloneHead(global.head));
  const clientCentroids: Float32Array[] = groups.map(() => global.centroids.slice());
  const previousHeads = groups.map(() => cloneHead(global.head));
  // Without module E (or C) participants keep their own heads (or centroids) between rounds.
  let headsKept = false;
  let centroidsKept = false;
  const rounds: RoundRecord[] = [];
  const featureKey = featureConfigKey(backbone.descriptor);

  for (let round = 1; round <= options.rounds; round++) {
    const trainStarted = performance.now();
    const updates: ClientUpdate[] = [];
    let lossSum = 0;
    let entropySum = 0;
    for (let i = 0; i < groups.length; i++) {
      const startHead = headsKept ? clientHeads[i] : global.head;
      const trainer = localRoundTrainerOptions(
        { ...simulationBatchOptions(options), shifts: shifts[i] },
        { federationSeed: options.seed, index: i, round, localSteps: options.localSteps, k: options.k, codeDim, regularizer: options.regularizer, regularizerScope: options.regularizerScope, lambda: options.lambda },
        global.head,
        previousHeads[i],
      );
      const startCentroids = centroidsKept ? clientCentroids[i] : global.centroids;
      const result = await trainModel(stores[i], engine, { head: startHead, centroids: startCentroids }, trainer);
      const last = result.history.at(-1);
      lossSum += last?.loss ?? 0;
      entropySum += last?.clusterEntropy ?? 0;
      clientHeads[i] = result.head;
      clientCentroids[i] = result.centroids;
      previousHeads[i] = cloneHead(result.head);
      const honest: ClientUpdate = {
        clientId: participantClientId(i),
        head: result.head,
        centroids: result.centroids,
        samples: stores[i].images.length,
        backboneSha256: backbone.descriptor.sha256,
        featureKey,
      };
      // An attacker keeps its honest state and sends a transformed update.
      updates.push(i < attackers ? applyAttack(honest, { head: startHead, centroids: startCentroids }, options.attack!.attack, createRng(aggregationSeed(options.seed, round) * 31 + i)) : honest);
    }
    // What the server's upload checks refuse never reaches the aggregation.
    const refused: { clientId: string; reason: string }[] = [];
    const accepted = updates.filter((update) => {
      try {
        validateUpdate(update, { channels, codeDim, k: options.k, backboneSha256: backbone.descriptor.sha256, featureKey });
        if (update.samples > maxSamples) throw new AggregationError('too-many-samples', `claims ${update.samples} samples, above the maximum of ${maxSamples}`, update.clientId);
        return true;
      } catch (err) {
        if (!(err instanceof AggregationError)) throw err;
        refused.push({ clientId: update.clientId, reason: err.message });
        return false;
      }
    });
    const trainSeconds = (performance.now() - trainStarted) / 1000;
    const aggregateStarted = performance.now();
    let robustRecord: RoundRecord['robust'];
    let permutation: number[] | undefined;
    if (accepted.length > 0) {
      const aggregated = strategy.aggregate(accepted, {
        k: options.k,
        codeDim,
        channels,
        seed: aggregationSeed(options.seed, round),
        modules: options.modules,
        previous: global,
        robust,
      });
      global = { head: aggregated.head, centroids: aggregated.centroids };
      headsKept = aggregated.clientHeadsKept;
      centroidsKept = aggregated.clientCentroidsKept;
      if (Array.isArray(aggregated.details.permutation)) permutation = aggregated.details.permutation as number[];
      const details = aggregated.details.robust as RoundRecord['robust'] | undefined;
      if (details) robustRecord = { clipped: details.clipped, dropped: details.dropped, trimmedPooledRows: details.trimmedPooledRows };
    }
    const aggregateSeconds = (performance.now() - aggregateStarted) / 1000;
    const evaluateStarted = performance.now();
    const personal = headsKept || centroidsKept ? groups.map((_, i) => ({ head: headsKept ? clientHeads[i] : global.head, centroids: centroidsKept ? clientCentroids[i] : global.centroids })) : undefined;
    const evaluateNow = evaluation !== undefined && (round === options.rounds || round % (options.evalEvery ?? 1) === 0);
    const metrics = evaluateNow ? await evaluateModel(evaluation, backbone, engine, personal ?? [global], options) : undefined;
    const record: RoundRecord = {
      round,
      metrics,
      meanLoss: lossSum / groups.length,
      meanEntropy: entropySum / groups.length,
      trainSeconds,
      aggregateSeconds,
      evaluateSeconds: (performance.now() - evaluateStarted) / 1000,
      ...(refused.length ? { refused } : {}),
      ...(robustRecord ? { robust: robustRecord } : {}),
      ...(permutation ? { permutation } : {}),
    };
    rounds.push(record);
    await hooks.onRound?.(record, global);
  }
  return {
    partition: groups.map((group, i) => ({ clientId: participantClientId(i), images: group.length, domains: [...new Set(group.map((item) => item.domain ?? ''))].filter(Boolean) })),
    rounds,
    final: rounds.at(-1)?.metrics,
    global,
    ...(headsKept ? { clientHeads } : {}),
    ...(centroidsKept ? { clientCentroids } : {}),
  };
}

/**
 * Metrics of one model, or the mean over several (head, centroids) pairs when participants keep their
 * own heads or centroids (modules E or C off).
 */
export async function evaluateModel(
  evaluation: Dataset,
  backbone: Backbone,
  engine: TrainingEngine,
  models: { head: HeadParams; centroids: Float32Array }[],
  options: { k: number; codeDim?: number; cacheDir?: string },
): Promise<SegmentationMetrics> {
  const codeDim = options.codeDim ?? TRAINING_DEFAULTS.codeDim;
  const all: SegmentationMetrics[] = [];
  for (const { head, centroids } of models) {
    const channels = head.l2Bias.length;
    all.push(await evaluateCentroids(evaluation, backbone, centroids, options.k, { cacheDir: options.cacheDir, codes: headCodeFunction(engine, head, channels, codeDim) }));
  }
  return meanMetrics(all);
}

/** Element-wise mean of metrics (per-class IoU averaged where present). */
export function meanMetrics(list: SegmentationMetrics[]): SegmentationMetrics {
  if (list.length === 1) return list[0];
  const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
  const perClassIoU: Record<string, number | null> = {};
  for (const name of Object.keys(list[0].perClassIoU)) {
    const values = list.map((m) => m.perClassIoU[name]).filter((v): v is number => v !== null);
    perClassIoU[name] = values.length ? mean(values) : null;
  }
  return {
    mIoU: mean(list.map((m) => m.mIoU)),
    pixelAccuracy: mean(list.map((m) => m.pixelAccuracy)),
    perClassIoU,
    images: list[0].images,
    pixels: list[0].pixels,
  };
}
