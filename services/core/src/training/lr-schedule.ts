// Learning-rate schedules across a federation's rounds: the factor a participant's Adam learning
// rates are multiplied by at each local step, from the step's place in the whole federation
// (round r, local step s of S: global step (r - 1) S + s - 1 of rounds x S).

import { ConfigError } from '../errors.js';

/** `constant`: the paper (factor 1); `cosine`: 0.5 (1 + cos(π t / T)) over the federation's T steps. */
export type LearningRateSchedule = 'constant' | 'cosine';

export const LR_SCHEDULES: readonly LearningRateSchedule[] = ['constant', 'cosine'];

/** Where a run of local steps sits in the whole schedule. */
export interface ScheduledSteps {
  schedule: LearningRateSchedule;
  /** Global steps taken before this run's first step. */
  offset: number;
  /** Steps of the whole schedule (rounds x local steps). */
  total: number;
}

/**
 * The learning-rate factor of global step `step` (0-based) of `total`.
 *
 * @throws ConfigError for an unknown schedule or a total below 1
 */
export function learningRateScale(schedule: LearningRateSchedule, step: number, total: number): number {
  if (!(total >= 1)) throw new ConfigError(`a learning-rate schedule needs at least one step, got ${total}`);
  switch (schedule) {
    case 'constant':
      return 1;
    case 'cosine':
      return 0.5 * (1 + Math.cos((Math.PI * Math.min(step, total)) / total));
    default:
      throw new ConfigError(`unknown learning-rate schedule "${String(schedule)}"; choose ${LR_SCHEDULES.join(' or ')}`);
  }
}

/** Parses a schedule name. */
export function parseLearningRateSchedule(text: string): LearningRateSchedule {
  if ((LR_SCHEDULES as readonly string[]).includes(text)) return text as LearningRateSchedule;
  throw new ConfigError(`unknown learning-rate schedule "${text}"; choose ${LR_SCHEDULES.join(' or ')}`);
}
