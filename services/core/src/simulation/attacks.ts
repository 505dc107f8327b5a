// Model-poisoning attacks for the simulator (`fuss simulate --attackers N --attack KIND`): the first N
// participants (enrolment order) train honestly, then send a transformed update. Used to measure the
// robust aggregation rules (strategies/robust.ts); never part of a real participant.

import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { ConfigError } from '../errors.js';
import type { Rng } from '../math/rng.js';
import type { ClientUpdate } from '../strategies/update.js';

export type Attack =
  | { kind: 'scale'; factor: number }
  | { kind: 'signflip' }
  | { kind: 'noise'; sigma: number }
  | { kind: 'samples'; count: number }
  | { kind: 'nan' };

export const ATTACK_HELP = 'scale:S (delta times S), signflip (negated delta), noise:SIGMA (Gaussian replacement), samples:N (claims N images), nan';

/** Parses `scale:S`, `signflip`, `noise:σ`, `samples:N` or `nan`. */
export function parseAttack(text: string): Attack {
  const [kind, arg, ...rest] = text.trim().split(':');
  const value = Number(arg);
  const bad = () => new ConfigError(`unknown attack "${text}"; choose ${ATTACK_HELP}`);
  if (rest.length) throw bad();
  switch (kind) {
    case 'scale':
      if (!Number.isFinite(value)) throw bad();
      return { kind, factor: value };
    case 'noise':
      if (!(value > 0)) throw bad();
      return { kind, sigma: value };
    case 'samples':
      if (!Number.isSafeInteger(value) || value < 1) throw bad();
      return { kind, count: value };
    case 'signflip':
    case 'nan':
      if (arg !== undefined) throw bad();
      return { kind };
  }
  throw bad();
}

export function formatAttack(attack: Attack): string {
  switch (attack.kind) {
    case 'scale':
      return `scale:${attack.factor}`;
    case 'noise':
      return `noise:${attack.sigma}`;
    case 'samples':
      return `samples:${attack.count}`;
    default:
      return attack.kind;
  }
}

/**
 * The update an attacker sends instead of its honest `update`, which started from `start` (the global
 * model it received). Deltas are taken from `start`; values are float32 as on the wire.
 */
export function applyAttack(update: ClientUpdate, start: { head: HeadParams; centroids: Float32Array }, attack: Attack, rng: Rng): ClientUpdate {
  const map = (fn: (value: number, base: number) => number) => ({
    head: Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, update.head[name].map((v, i) => fn(v, start.head[name][i]))])) as unknown as HeadParams,
    centroids: update.centroids.map((v, i) => fn(v, start.centroids[i])),
  });
  switch (attack.kind) {
    case 'scale':
      return { ...update, ...map((v, base) => base + attack.factor * (v - base)) };
    case 'signflip':
      return { ...update, ...map((v, base) => base - (v - base)) };
    case 'noise':
      return { ...update, ...map(() => attack.sigma * rng.normal()) };
    case 'samples':
      return { ...update, samples: attack.count };
    case 'nan':
      return { ...update, ...map(() => Number.NaN) };
  }
}
