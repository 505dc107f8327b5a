// In-process federation simulator (research harness): partitions a dataset among N participants,
// runs rounds of local training from the global model, aggregates the updates with a strategy and
// evaluates the global model after every round. Participants' data never mixes: each has its own
// feature store, statistics (mean feature, neighbours) and calibrated shifts; only updates cross.
// What a participant keeps between rounds (its Adam states with `localOptimizer: 'keep'`) and what the
// server keeps (the server optimiser's state, the model scores of the selection rule) stays in memory.

import type { Backbone } from '../backbone/backbone.js';
import { featureConfigKey } from '../backbone/descriptor.js';
import { dominantClass, readLabelMap, type Dataset, type DatasetItem } from '../dataset/dataset.js';
import { ConfigError } from '../errors.js';
import { HEAD_PARAM_NAMES, type HeadParams, type RegularizerScope, type TrainingEngine } from '../engines/engine.js';
import { meanPairwiseCosine } from '../math/vectors.js';
import { evaluateCentroids, type SegmentationMetrics } from '../evaluation/evaluate.js';
import { cloneHead, initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { partition, type PartitionSpec } from '../partition/partition.js';
import { createStrategy, parseRobustRule, parseServerOptimizer, validateUpdate, type ServerOptimizerState } from '../strategies/index.js';
import { parseAugmentation } from '../features/views.js';
import { parseLearningRateSchedule, type LearningRateSchedule } from '../training/lr-schedule.js';
import type { TrainerOptimizerState } from '../training/trainer.js';
import { federationScore, formatSelectionRule, parseSelectionRule, selectVersion } from './model-selection.js';
import { AggregationError } from '../strategies/aggregation-error.js';
import { weightedMean, weightedMeanHead } from '../strategies/weighted-mean.js';
import { applyAttack, type Attack } from './attacks.js';
import type { AggregationModules } from '../strategies/strategy.js';
import type { ClientUpdate } from '../strategies/update.js';
import type { BatchOptions, PairTerms } from '../training/batch-sampler.js';
import { headCodeFunction } from '../training/head-codes.js';
import { trainModel } from '../training/trainer.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { loadParticipantData, localRoundTrainerOptions, participantBatchOptions, scoreOnHeldOut, type ParticipantData, type Regularizer } from './participant.js';
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
  /** Evaluate every this many rounds (and always after the last, and the selected model). Default 1. */
  evalEvery?: number;
  /** Robust aggregation rule (strategies/robust.ts); default `clip`, as a federation's. */
  robust?: string;
  /** Largest sample count an update may claim, as a federation's `maxSamples` (default 1 000 000). */
  maxSamples?: number;
  /** The first `attackers` participants send `attack`'s transform of their honest update. */
  attack?: { attackers: number; attack: Attack };
  /** Server optimiser on the head delta (strategies/server-optimizer.ts text); default `none`, the paper. */
  serverOptimizer?: string;
  /** `keep`: each participant continues its Adam states from round to round; `reset` (default, the paper): fresh each round. */
  localOptimizer?: LocalOptimizer;
  /** Learning-rate schedule across rounds (training/lr-schedule.ts); default `constant`, the paper. */
  lrSchedule?: LearningRateSchedule;
  /** Augmented views participants train on (features/views.ts text); default `none`, the paper. */
  augment?: string;
  /** Label-free model selection and stopping (model-selection.ts text); default `none`. */
  selection?: string;
  /**
   * Also evaluate the mean of the last N global models (N >= 2; heads and centroids, whose class ids stay
   * stable across versions), after every evaluated round from round 2: a readout that averages out the
   * round-to-round swings of the published model. Training is unchanged. Needs modules E and C.
   */
  tailAverage?: number;
}

/** Whether a participant's Adam optimisers restart every round (the paper) or continue. */
export type LocalOptimizer = 'reset' | 'keep';
export const LOCAL_OPTIMIZERS: readonly LocalOptimizer[] = ['reset', 'keep'];

/** Parses a local optimiser policy. */
export function parseLocalOptimizer(text: string): LocalOptimizer {
  if ((LOCAL_OPTIMIZERS as readonly string[]).includes(text)) return text as LocalOptimizer;
  throw new ConfigError(`unknown local optimiser policy "${text}"; choose ${LOCAL_OPTIMIZERS.join(' or ')}`);
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
  /**
   * Mean cosine similarity over pairs of the accepted updates' head deltas (each head minus the head
   * its participant started the round from): how much the participants agree on where to move the
   * model, known to the server without any image. Recorded as a candidate label-free stopping signal;
   * undefined with fewer than two accepted updates.
   */
  updateAgreement?: number;
  trainSeconds: number;
  aggregateSeconds: number;
  evaluateSeconds: number;
  /** Updates refused before aggregation, as the server would refuse their upload (NaN, too many samples). */
  refused?: { clientId: string; reason: string }[];
  /** What the robust rule did: clipped, dropped (Krum) or trimmed participants. */
  robust?: { clipped?: string[]; dropped?: string[]; trimmedPooledRows?: Record<string, number> };
  /** With module C: `permutation[id]` is the merged centroid that became class id `id` (stable ids). */
  permutation?: number[];
  /** With a selection rule: the federation's score of the model this round started from (version round - 1). */
  score?: { version: number; value?: number; participants: (number | null)[] };
  /** With `tailAverage`: the metrics of the mean of global versions `fromVersion`..`round`. */
  tailAverage?: { fromVersion: number; metrics: SegmentationMetrics };
}

export interface SimulationResult {
  partition: { clientId: string; images: number; domains: string[] }[];
  rounds: RoundRecord[];
  final?: SegmentationMetrics;
  global: { head: HeadParams; centroids: Float32Array };
  clientHeads?: HeadParams[];
  clientCentroids?: Float32Array[];
  /** With a selection rule: the model it selected (version = round that made it, 0 the initial one). */
  selection?: {
    rule: string;
    selectedVersion: number;
    /** Set when the rule stopped the federation before its last round. */
    stoppedAfterRound?: number;
    /** Metrics of the selected model on the evaluation set. */
    metrics?: SegmentationMetrics;
    model: { head: HeadParams; centroids: Float32Array };
  };
  /** With `tailAverage`: the mean of the last `rounds` global versions (from `fromVersion`), and its metrics. */
  tailAverage?: { rounds: number; fromVersion: number; metrics?: SegmentationMetrics; model: { head: HeadParams; centroids: Float32Array } };
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
  const serverOptimizer = parseServerOptimizer(options.serverOptimizer ?? 'none');
  if (serverOptimizer.kind !== 'none' && !options.modules.head) throw new ConfigError('a server optimiser steps along the aggregated head: it needs module E (aggregate the head)');
  const keepOptimizer = parseLocalOptimizer(options.localOptimizer ?? 'reset') === 'keep';
  const lrSchedule = parseLearningRateSchedule(options.lrSchedule ?? 'constant');
  const views = parseAugmentation(options.augment ?? 'none');
  const selection = parseSelectionRule(options.selection ?? 'none');
  const tailAverage = options.tailAverage;
  if (tailAverage !== undefined) {
    if (!Number.isSafeInteger(tailAverage) || tailAverage < 2) throw new ConfigError(`the tail average takes the last N >= 2 global models, got ${tailAverage}`);
    if (!options.modules.head || !options.modules.centroids) throw new ConfigError('the tail average is of global models: it needs modules E and C (aggregate the head and the centroids)');
  }
  const groups = await partitionDataset(train, options.clients, options.partition, options.seed);
  const data: ParticipantData[] = [];
  for (const [i, group] of groups.entries()) {
    data.push(await loadParticipantData(group, backbone, {
      federationSeed: options.seed, index: i, batch: simulationBatchOptions(options), views, selection, fixedShifts: options.fixedShifts, shiftQuantiles: options.shiftQuantiles, cacheDir: options.cacheDir,
    }));
    const { validation, shifts } = data[i];
    log(`participant ${i}: ${group.length} images${validation ? ` (${validation.sourceImages} held out)` : ''}${views.length > 1 ? `, ${views.length} views` : ''}, shifts ${Object.values(shifts).map((v) => v.toFixed(3)).join('/')}`);
  }
  const stores = data.map((d) => d.store);
  const channels = stores[0].channels;
  const shape = { channels, codeDim };
  const initRng = createRng(options.seed);
  let global = { head: initHead(shape, initRng), centroids: initCentroids(options.k, codeDim, initRng) };
  const clientHeads = groups.map(() => cloneHead(global.head));
  const clientCentroids: Float32Array[] = groups.map(() => global.centroids.slice());
  const previousHeads = groups.map(() => cloneHead(global.head));
  const optimizerStates: (TrainerOptimizerState | undefined)[] = groups.map(() => undefined);
  let serverState: ServerOptimizerState | undefined;
  // Global models by version (version r: after round r), for the selection rule to go back to.
  const versions = [global];
  const scores = new Map<number, number>();
  let stoppedAfterRound: number | undefined;
  // Without module E (or C) participants keep their own heads (or centroids) between rounds.
  let headsKept = false;
  let centroidsKept = false;
  const rounds: RoundRecord[] = [];
  /** With `tailAverage`: the mean of the global versions from max(1, last - N + 1) to `lastVersion`. */
  const tailWindow = (lastVersion: number) => {
    const fromVersion = Math.max(1, lastVersion - tailAverage! + 1);
    return { fromVersion, model: meanModel(versions.slice(fromVersion, lastVersion + 1)) };
  };
  const featureKey = featureConfigKey(backbone.descriptor);

  for (let round = 1; round <= options.rounds; round++) {
    const trainStarted = performance.now();
    const updates: ClientUpdate[] = [];
    const startHeads: HeadParams[] = [];
    const participantScores: (number | null)[] = [];
    let lossSum = 0;
    let entropySum = 0;
    for (let i = 0; i < groups.length; i++) {
      const startHead = headsKept ? clientHeads[i] : global.head;
      startHeads.push(startHead);
      const startCentroids = centroidsKept ? clientCentroids[i] : global.centroids;
      const batch = { ...simulationBatchOptions(options), shifts: data[i].shifts };
      if (selection) {
        const score = await scoreOnHeldOut(data[i], engine, { head: startHead, centroids: startCentroids }, batch, { federationSeed: options.seed, index: i, k: options.k, codeDim, lambda: options.lambda });
        participantScores.push(score?.loss ?? null);
      }
      const trainer = localRoundTrainerOptions(
        batch,
        {
          federationSeed: options.seed, index: i, round, localSteps: options.localSteps, k: options.k, codeDim, regularizer: options.regularizer, regularizerScope: options.regularizerScope, lambda: options.lambda,
          lrSchedule, rounds: options.rounds,
        },
        global.head,
        previousHeads[i],
      );
      const result = await trainModel(stores[i], engine, { head: startHead, centroids: startCentroids }, { ...trainer, ...(keepOptimizer && optimizerStates[i] ? { optimizerState: optimizerStates[i] } : {}) });
      const last = result.history.at(-1);
      lossSum += last?.loss ?? 0;
      entropySum += last?.clusterEntropy ?? 0;
      clientHeads[i] = result.head;
      clientCentroids[i] = result.centroids;
      previousHeads[i] = cloneHead(result.head);
      if (keepOptimizer) optimizerStates[i] = result.optimizerState;
      const honest: ClientUpdate = {
        clientId: participantClientId(i),
        head: result.head,
        centroids: result.centroids,
        samples: stores[i].sourceImages,
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
    const startHeadOf = new Map(updates.map((u, i) => [u.clientId, startHeads[i]]));
    const updateAgreement = meanPairwiseCosine(accepted.map((u) => headDelta(u.head, startHeadOf.get(u.clientId)!)));
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
        serverOptimizer,
        serverState,
      });
      global = { head: aggregated.head, centroids: aggregated.centroids };
      serverState = aggregated.serverState;
      headsKept = aggregated.clientHeadsKept;
      centroidsKept = aggregated.clientCentroidsKept;
      if (Array.isArray(aggregated.details.permutation)) permutation = aggregated.details.permutation as number[];
      const details = aggregated.details.robust as RoundRecord['robust'] | undefined;
      if (details) robustRecord = { clipped: details.clipped, dropped: details.dropped, trimmedPooledRows: details.trimmedPooledRows };
    }
    versions.push(global);
    let score: RoundRecord['score'];
    if (selection) {
      // The server learns the score of the round's starting model from the updates (only accepted ones).
      const acceptedIds = new Set(accepted.map((u) => u.clientId));
      const value = federationScore(participantScores.filter((v, i): v is number => v !== null && acceptedIds.has(participantClientId(i))));
      if (value !== undefined) scores.set(round - 1, value);
      score = { version: round - 1, value, participants: participantScores };
    }
    const stop = selection !== undefined && round < options.rounds && selectVersion(scores, round, selection.patience).stop;
    const aggregateSeconds = (performance.now() - aggregateStarted) / 1000;
    const evaluateStarted = performance.now();
    const personal = headsKept || centroidsKept ? groups.map((_, i) => ({ head: headsKept ? clientHeads[i] : global.head, centroids: centroidsKept ? clientCentroids[i] : global.centroids })) : undefined;
    const evaluateNow = evaluation !== undefined && (round === options.rounds || stop || round % (options.evalEvery ?? 1) === 0);
    const metrics = evaluateNow ? await evaluateModel(evaluation, backbone, engine, personal ?? [global], options) : undefined;
    let tailRecord: RoundRecord['tailAverage'];
    if (tailAverage !== undefined && evaluateNow && round >= 2) {
      const { fromVersion, model } = tailWindow(round);
      tailRecord = { fromVersion, metrics: await evaluateModel(evaluation, backbone, engine, [model], options) };
    }
    const record: RoundRecord = {
      round,
      metrics,
      meanLoss: lossSum / groups.length,
      meanEntropy: entropySum / groups.length,
      ...(updateAgreement === undefined ? {} : { updateAgreement }),
      trainSeconds,
      aggregateSeconds,
      evaluateSeconds: (performance.now() - evaluateStarted) / 1000,
      ...(refused.length ? { refused } : {}),
      ...(robustRecord ? { robust: robustRecord } : {}),
      ...(permutation ? { permutation } : {}),
      ...(score ? { score } : {}),
      ...(tailRecord ? { tailAverage: tailRecord } : {}),
    };
    rounds.push(record);
    await hooks.onRound?.(record, global);
    if (stop) {
      stoppedAfterRound = round;
      log(`selection: no better score in ${selection!.patience} rounds; stopping after round ${round}`);
      break;
    }
  }
  let selected: SimulationResult['selection'];
  if (selection) {
    const lastVersion = rounds.length;
    const { selected: version } = selectVersion(scores, lastVersion, selection.patience);
    const model = versions[version];
    // The round's own evaluation when there was one (with modules E or C off: of the participants' models).
    const metrics = evaluation === undefined ? undefined : (rounds[version - 1]?.metrics ?? (await evaluateModel(evaluation, backbone, engine, [model], options)));
    selected = { rule: formatSelectionRule(selection), selectedVersion: version, ...(stoppedAfterRound ? { stoppedAfterRound } : {}), ...(metrics ? { metrics } : {}), model };
  }
  let tail: SimulationResult['tailAverage'];
  if (tailAverage !== undefined) {
    const last = rounds.at(-1)?.tailAverage;
    tail = { rounds: tailAverage, ...tailWindow(rounds.length), ...(last ? { metrics: last.metrics } : {}) };
  }
  return {
    partition: groups.map((group, i) => ({ clientId: participantClientId(i), images: group.length, domains: [...new Set(group.map((item) => item.domain ?? ''))].filter(Boolean) })),
    rounds,
    final: rounds.at(-1)?.metrics,
    global,
    ...(headsKept ? { clientHeads } : {}),
    ...(centroidsKept ? { clientCentroids } : {}),
    ...(selected ? { selection: selected } : {}),
    ...(tail ? { tailAverage: tail } : {}),
  };
}

/** The plain mean of global models (heads and centroids, element by element; class ids are stable across versions). */
function meanModel(models: readonly { head: HeadParams; centroids: Float32Array }[]): { head: HeadParams; centroids: Float32Array } {
  const weights = models.map(() => 1);
  return { head: weightedMeanHead(models.map((m) => m.head), weights), centroids: weightedMean(models.map((m) => m.centroids), weights) };
}

/** A head's parameters minus another's, every parameter one after the other. */
function headDelta(head: HeadParams, start: HeadParams): Float32Array {
  const delta = new Float32Array(HEAD_PARAM_NAMES.reduce((n, name) => n + head[name].length, 0));
  let offset = 0;
  for (const name of HEAD_PARAM_NAMES) {
    const values = head[name];
    const from = start[name];
    for (let i = 0; i < values.length; i++) delta[offset + i] = values[i] - from[i];
    offset += values.length;
  }
  return delta;
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
