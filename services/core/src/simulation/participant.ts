// One participant's local round, shared by the in-process simulator and the participant SDK: its data
// (features of its images and their augmented views, images held out for model selection, shifts
// calibrated without labels), the trainer settings (paper defaults, the round's regularizer, the
// learning-rate schedule, seeds derived from the federation seed and the participant's enrolment
// index) and the score of a received global model on the held-out images.

import type { Backbone } from '../backbone/backbone.js';
import type { HeadParams, RegularizerScope, TrainingEngine } from '../engines/engine.js';
import type { ExtractOptions } from '../features/extract.js';
import { IDENTITY_VIEW, type FeatureView } from '../features/views.js';
import { createRng } from '../math/rng.js';
import type { BatchOptions, PairTerms } from '../training/batch-sampler.js';
import { loadFeatureStore, type FeatureStore } from '../training/feature-store.js';
import type { LearningRateSchedule } from '../training/lr-schedule.js';
import { calibrateShifts, DEFAULT_SHIFT_QUANTILES } from '../training/shift-calibration.js';
import type { TrainerOptions } from '../training/trainer.js';
import { validationScore, type ValidationScore } from '../training/validation-score.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { splitHoldout, type SelectionRule } from './model-selection.js';
import { holdoutSeed, localTrainingSeed, shiftCalibrationSeed, validationSeed } from './seeds.js';

export type Regularizer = 'none' | 'fedprox' | 'moon';

/** The settings of one participant's local round. */
export interface LocalRoundSettings {
  federationSeed: number;
  /** The participant's enrolment index (0-based). */
  index: number;
  round: number;
  localSteps: number;
  k: number;
  codeDim: number;
  regularizer: Regularizer;
  regularizerScope: RegularizerScope;
  lambda?: number;
  /** Learning-rate schedule across the federation's rounds (default constant, the paper). */
  lrSchedule?: LearningRateSchedule;
  /** The federation's rounds (the schedule's length is rounds x localSteps). */
  rounds?: number;
}

/** A participant's features: training images (every view), held-out images (model selection), shifts. */
export interface ParticipantData {
  store: FeatureStore;
  /** The held-out images (the image itself only), centred with the training images' mean; with a selection rule. */
  validation?: FeatureStore;
  shifts: PairTerms;
}

/**
 * Loads a participant's features and calibrates its shifts on its training images. With `selection`,
 * `splitHoldout` keeps a seeded share of the images out of training for scoring models.
 */
export async function loadParticipantData(
  items: readonly { id: string; imagePath: string }[],
  backbone: Backbone,
  settings: {
    federationSeed: number;
    index: number;
    /** Batch settings the shifts are calibrated with (their own shifts are ignored). */
    batch: BatchOptions;
    views?: readonly FeatureView[];
    selection?: SelectionRule;
    /** Fixed shifts instead of calibrated ones. */
    fixedShifts?: PairTerms;
    shiftQuantiles?: PairTerms;
  } & Pick<ExtractOptions, 'cacheDir' | 'log' | 'onProgress'>,
): Promise<ParticipantData> {
  const extract = { cacheDir: settings.cacheDir, log: settings.log, onProgress: settings.onProgress };
  const split = settings.selection ? splitHoldout(items, settings.selection.holdout, holdoutSeed(settings.federationSeed, settings.index)) : { train: [...items], heldOut: [] };
  const store = await loadFeatureStore(split.train, backbone, { ...extract, views: settings.views ?? [IDENTITY_VIEW] });
  const validation = split.heldOut.length > 0 ? { ...(await loadFeatureStore(split.heldOut, backbone, extract)), mean: store.mean } : undefined;
  const shifts = settings.fixedShifts ?? calibrateParticipantShifts(store, settings.batch, settings.federationSeed, settings.index, settings.shiftQuantiles);
  return { store, ...(validation ? { validation } : {}), shifts };
}

/**
 * The participant's score of a model on its held-out images (validation-score.ts), with its own
 * shifts and batches seeded by the federation seed and its index; undefined without held-out images.
 */
export async function scoreOnHeldOut(
  data: ParticipantData,
  engine: TrainingEngine,
  model: { head: HeadParams; centroids: Float32Array },
  batch: BatchOptions,
  settings: { federationSeed: number; index: number; k: number; codeDim: number; lambda?: number },
): Promise<ValidationScore | undefined> {
  if (!data.validation) return undefined;
  return validationScore(data.validation, engine, model, { ...batch, shifts: data.shifts }, {
    k: settings.k, codeDim: settings.codeDim, lambda: settings.lambda ?? TRAINING_DEFAULTS.lambda, seed: validationSeed(settings.federationSeed, settings.index),
  });
}

/** Paper batch settings with the given shifts, overridden by `overrides`. */
export function participantBatchOptions(shifts: PairTerms, overrides: Partial<Omit<BatchOptions, 'shifts'>> = {}): BatchOptions {
  return {
    queries: TRAINING_DEFAULTS.queries,
    negatives: TRAINING_DEFAULTS.negatives,
    sampling: 'sampled',
    samplePoints: TRAINING_DEFAULTS.samplePoints,
    weights: TRAINING_DEFAULTS.weights,
    centre: true,
    dropout: TRAINING_DEFAULTS.dropout,
    ...overrides,
    shifts,
  };
}

/** Shifts calibrated on the participant's own features (seeded by federation seed and index). */
export function calibrateParticipantShifts(store: FeatureStore, batch: BatchOptions, federationSeed: number, index: number, quantiles: PairTerms = DEFAULT_SHIFT_QUANTILES): PairTerms {
  return calibrateShifts(store, batch, createRng(shiftCalibrationSeed(federationSeed, index)), quantiles).shifts;
}

/**
 * Trainer options of a local round. `globalHead` anchors FedProx and MOON; `previousHead` is the
 * participant's own head of its previous round (MOON's negative; the initial model in round 1).
 */
export function localRoundTrainerOptions(batch: BatchOptions, settings: LocalRoundSettings, globalHead: HeadParams, previousHead: HeadParams): TrainerOptions {
  return {
    ...batch,
    steps: settings.localSteps,
    k: settings.k,
    codeDim: settings.codeDim,
    lambda: settings.lambda ?? TRAINING_DEFAULTS.lambda,
    headLr: TRAINING_DEFAULTS.headLr,
    centroidLr: TRAINING_DEFAULTS.centroidLr,
    seed: localTrainingSeed(settings.federationSeed, settings.round, settings.index),
    ...(settings.lrSchedule && settings.lrSchedule !== 'constant'
      ? { learningRate: { schedule: settings.lrSchedule, offset: (settings.round - 1) * settings.localSteps, total: (settings.rounds ?? settings.round) * settings.localSteps } }
      : {}),
    ...(settings.regularizer === 'fedprox' ? { prox: { globalHead, mu: TRAINING_DEFAULTS.proxMu, scope: settings.regularizerScope } } : {}),
    ...(settings.regularizer === 'moon'
      ? { moon: { globalHead, previousHead, tau: TRAINING_DEFAULTS.moonTau, weight: TRAINING_DEFAULTS.moonWeight, scope: settings.regularizerScope } }
      : {}),
  };
}
