// Local unsupervised training (Eq. 7): the head learns from the correspondence loss (plus MOON or
// FedProx when federated), the centroids from the centroid loss on detached codes; two Adam optimisers.
// The engine computes loss and gradients; sampling, optimisation and the loop live here, once.

import { FussError } from '../errors.js';
import { createRng } from '../math/rng.js';
import { Adam, type AdamState } from './adam.js';
import { learningRateScale, type ScheduledSteps } from './lr-schedule.js';
import { QueryOrder, sampleBatch, type BatchOptions } from './batch-sampler.js';
import type { FeatureStore } from './feature-store.js';
import { cloneHead } from '../head/head-init.js';
import { HEAD_PARAM_NAMES, type HeadParams, type StepBatch, type StepConfig, type StepResult, type TrainingEngine } from '../engines/engine.js';

export interface TrainerOptions extends BatchOptions {
  steps: number;
  k: number;
  codeDim: number;
  lambda: number;
  headLr: number;
  centroidLr: number;
  seed: number;
  moon?: StepConfig['moon'];
  prox?: StepConfig['prox'];
  /** Adam states to continue from (a participant keeping its optimisers across rounds); fresh by default. */
  optimizerState?: TrainerOptimizerState;
  /** A learning-rate schedule across rounds (lr-schedule.ts); constant by default. */
  learningRate?: ScheduledSteps;
}

/** The head's and the centroids' Adam states. */
export interface TrainerOptimizerState {
  head: AdamState;
  centroids: AdamState;
}

export interface StepEvent {
  step: number;
  steps: number;
  loss: number;
  parts: StepResult['parts'];
  /** Entropy of the query cells' centroid assignments, normalised to [0, 1] (0: one cluster, collapse). */
  clusterEntropy: number;
  milliseconds: number;
}

export interface TrainResult {
  head: HeadParams;
  centroids: Float32Array;
  steps: number;
  history: StepEvent[];
  /** The optimisers' states after the last step (to continue from in the next round). */
  optimizerState: TrainerOptimizerState;
}

/** Training produced a non-finite loss or gradient; `lastGood` holds the parameters before that step. */
export class TrainingDivergedError extends FussError {
  constructor(
    message: string,
    readonly lastGood: { head: HeadParams; centroids: Float32Array; steps: number },
  ) {
    super(message, { status: 422, type: 'training-diverged' });
  }
}

/** Normalised entropy of assignment counts: -sum p log p / log K. */
export function assignmentEntropy(counts: ArrayLike<number>): number {
  let total = 0;
  for (let i = 0; i < counts.length; i++) total += counts[i];
  if (total === 0 || counts.length < 2) return 0;
  let h = 0;
  for (let i = 0; i < counts.length; i++) {
    if (counts[i] > 0) {
      const p = counts[i] / total;
      h -= p * Math.log(p);
    }
  }
  return h / Math.log(counts.length);
}

function allFinite(values: Float32Array): boolean {
  for (let i = 0; i < values.length; i++) if (!Number.isFinite(values[i])) return false;
  return true;
}

/**
 * Trains from `start` for `options.steps` steps. Deterministic for a seed and engine. Calls `onStep`
 * after every step. Throws TrainingDivergedError (with the last good parameters) on NaN or Infinity.
 */
export async function trainModel(
  store: FeatureStore,
  engine: TrainingEngine,
  start: { head: HeadParams; centroids: Float32Array },
  options: TrainerOptions,
  onStep?: (event: StepEvent) => void,
): Promise<TrainResult> {
  const rng = createRng(options.seed);
  const order = new QueryOrder(store.images.length, rng.fork());
  const head = cloneHead(start.head);
  const centroids = start.centroids.slice();
  const headOptimizer = new Adam({ lr: options.headLr }, options.optimizerState?.head);
  const centroidOptimizer = new Adam({ lr: options.centroidLr }, options.optimizerState?.centroids);
  const schedule = options.learningRate;
  const shape = { channels: store.channels, codeDim: options.codeDim };
  const config: StepConfig = { k: options.k, lambda: options.lambda, moon: options.moon, prox: options.prox };
  const history: StepEvent[] = [];
  let done: StepBatch | undefined; // the previous step's batch, whose buffers the next one reuses
  for (let step = 1; step <= options.steps; step++) {
    const started = performance.now();
    const batch = sampleBatch(store, options, order, rng, done);
    const result = await engine.step(head, centroids, shape, batch, config);
    done = batch;
    const finite = Number.isFinite(result.loss) && HEAD_PARAM_NAMES.every((n) => allFinite(result.headGrad[n])) && allFinite(result.centroidGrad);
    if (!finite) {
      throw new TrainingDivergedError(
        `training diverged at step ${step}: loss ${result.loss} (corr ${result.parts.corr}, cluster ${result.parts.cluster}); kept the model of step ${step - 1}`,
        { head, centroids, steps: step - 1 },
      );
    }
    const lrScale = schedule ? learningRateScale(schedule.schedule, schedule.offset + step - 1, schedule.total) : 1;
    headOptimizer.updateInPlace(head as unknown as Record<string, Float32Array>, result.headGrad as unknown as Record<string, Float32Array>, lrScale);
    centroidOptimizer.updateInPlace({ centroids }, { centroids: result.centroidGrad }, lrScale);
    const event: StepEvent = {
      step,
      steps: options.steps,
      loss: result.loss,
      parts: result.parts,
      clusterEntropy: assignmentEntropy(result.clusterCounts),
      milliseconds: performance.now() - started,
    };
    history.push(event);
    onStep?.(event);
  }
  return { head, centroids, steps: options.steps, history, optimizerState: { head: headOptimizer.snapshot(), centroids: centroidOptimizer.snapshot() } };
}
