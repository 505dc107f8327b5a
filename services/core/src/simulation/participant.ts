// One participant's local round, shared by the in-process simulator and the participant SDK: the
// trainer settings (paper defaults, the round's regularizer, seeds derived from the federation seed and
// the participant's enrolment index) and the label-free shift calibration on the participant's own data.

import type { HeadParams, RegularizerScope } from '../engines/engine.js';
import { createRng } from '../math/rng.js';
import type { BatchOptions, PairTerms } from '../training/batch-sampler.js';
import type { FeatureStore } from '../training/feature-store.js';
import { calibrateShifts, DEFAULT_SHIFT_QUANTILES } from '../training/shift-calibration.js';
import type { TrainerOptions } from '../training/trainer.js';
import { TRAINING_DEFAULTS } from '../defaults.js';
import { localTrainingSeed, shiftCalibrationSeed } from './seeds.js';

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
    ...(settings.regularizer === 'fedprox' ? { prox: { globalHead, mu: TRAINING_DEFAULTS.proxMu, scope: settings.regularizerScope } } : {}),
    ...(settings.regularizer === 'moon'
      ? { moon: { globalHead, previousHead, tau: TRAINING_DEFAULTS.moonTau, weight: TRAINING_DEFAULTS.moonWeight, scope: settings.regularizerScope } }
      : {}),
  };
}
