// Server optimisers on the head (Reddi et al. 2021, "Adaptive Federated Optimization", Algorithm 2):
// the round's aggregated head minus the global head it started from is a pseudo-gradient
// Δ_t = avg_i(θ_i) - θ_t, and the server takes an optimiser step along it instead of jumping to the
// average. The state (momentum, second moments) lives across rounds: the simulator keeps it in
// memory, the server in its blob store next to the model version it produced.
//
// - `none`: θ_{t+1} = avg (FedAvg; the paper).
// - `fedavgm[:lr[:momentum]]` (Hsu et al. 2019): m_t = β m_{t-1} + Δ_t, θ_{t+1} = θ_t + η m_t
//   (m_{-1} = 0; η = 1 and β = 0 is FedAvg).
// - `fedadam[:lr[:tau[:beta1[:beta2]]]]` (Reddi et al. Algorithm 2, FedAdam):
//   m_t = β1 m_{t-1} + (1 - β1) Δ_t, v_t = β2 v_{t-1} + (1 - β2) Δ_t², θ_{t+1} = θ_t + η m_t / (√v_t + τ),
//   with m_{-1} = 0 and v_{-1} = τ² as in the paper (no bias correction).
// Arithmetic is float64 per element; the state and the head are stored as float32.

import { HEAD_PARAM_NAMES, type HeadParamName, type HeadParams } from '../engines/engine.js';
import { ConfigError, ShapeError } from '../errors.js';

export type ServerOptimizer =
  | { kind: 'none' }
  | { kind: 'fedavgm'; lr: number; momentum: number }
  | { kind: 'fedadam'; lr: number; tau: number; beta1: number; beta2: number };

/** Defaults: FedAvgM with β = 0.9 (Hsu et al.), FedAdam with Reddi et al.'s β1 = 0.9, β2 = 0.99, τ = 1e-3. */
export const SERVER_OPTIMIZER_DEFAULTS = {
  fedavgm: { lr: 1, momentum: 0.9 },
  /** η = 1e-2: the server moves each coordinate by about η per round, the size of a round's head delta here. */
  fedadam: { lr: 1e-2, tau: 1e-3, beta1: 0.9, beta2: 0.99 },
} as const;

export const SERVER_OPTIMIZER_HELP = 'none, fedavgm[:lr[:momentum]], fedadam[:lr[:tau[:beta1[:beta2]]]]';

/** The pattern of an optimiser's text form (API schemas validate it before parseServerOptimizer). */
export const SERVER_OPTIMIZER_PATTERN = '^(none|fedavgm(:[0-9.eE+-]+){0,2}|fedadam(:[0-9.eE+-]+){0,4})$';

/** State carried from round to round: the rounds applied so far and the moments per head tensor. */
export interface ServerOptimizerState {
  step: number;
  /** First moment (FedAvgM: the momentum buffer). */
  m: Record<HeadParamName, Float32Array>;
  /** Second moment (FedAdam only). */
  v?: Record<HeadParamName, Float32Array>;
}

/**
 * Parses `none`, `fedavgm[:lr[:momentum]]` or `fedadam[:lr[:tau[:beta1[:beta2]]]]`; omitted numbers
 * take {@link SERVER_OPTIMIZER_DEFAULTS}.
 *
 * @throws ConfigError naming the accepted forms, or the out-of-range parameter
 */
export function parseServerOptimizer(text: string): ServerOptimizer {
  const [name, ...args] = text.trim().split(':');
  const numbers = args.map((a) => (a.trim() === '' ? NaN : Number(a)));
  if (numbers.some((n) => !Number.isFinite(n))) throw new ConfigError(`server optimiser "${text}": parameters must be numbers (${SERVER_OPTIMIZER_HELP})`);
  const check = (ok: boolean, what: string) => {
    if (!ok) throw new ConfigError(`server optimiser "${text}": ${what}`);
  };
  if (name === 'none' && args.length === 0) return { kind: 'none' };
  if (name === 'fedavgm' && args.length <= 2) {
    const d = SERVER_OPTIMIZER_DEFAULTS.fedavgm;
    const [lr = d.lr, momentum = d.momentum] = numbers;
    check(lr > 0, 'lr must be > 0');
    check(momentum >= 0 && momentum < 1, 'momentum must be in [0, 1)');
    return { kind: 'fedavgm', lr, momentum };
  }
  if (name === 'fedadam' && args.length <= 4) {
    const d = SERVER_OPTIMIZER_DEFAULTS.fedadam;
    const [lr = d.lr, tau = d.tau, beta1 = d.beta1, beta2 = d.beta2] = numbers;
    check(lr > 0, 'lr must be > 0');
    check(tau > 0, 'tau must be > 0');
    check(beta1 >= 0 && beta1 < 1 && beta2 >= 0 && beta2 < 1, 'beta1 and beta2 must be in [0, 1)');
    return { kind: 'fedadam', lr, tau, beta1, beta2 };
  }
  throw new ConfigError(`unknown server optimiser "${text}"; choose ${SERVER_OPTIMIZER_HELP}`);
}

/** The canonical text form, every parameter written out (what a federation stores). */
export function formatServerOptimizer(optimizer: ServerOptimizer): string {
  switch (optimizer.kind) {
    case 'none':
      return 'none';
    case 'fedavgm':
      return `fedavgm:${optimizer.lr}:${optimizer.momentum}`;
    case 'fedadam':
      return `fedadam:${optimizer.lr}:${optimizer.tau}:${optimizer.beta1}:${optimizer.beta2}`;
  }
}

/**
 * One server step: the next global head from the previous one and the round's aggregate, and the
 * state for the next round. `state` is the state after the previous round (undefined in the first
 * round, or after a change of optimiser). Inputs are not modified.
 *
 * @throws ShapeError when the heads or the state have different lengths
 */
export function applyServerOptimizer(
  optimizer: ServerOptimizer,
  previous: HeadParams,
  aggregated: HeadParams,
  state: ServerOptimizerState | undefined,
): { head: HeadParams; state?: ServerOptimizerState } {
  if (optimizer.kind === 'none') return { head: aggregated };
  const head = {} as HeadParams;
  const m = {} as Record<HeadParamName, Float32Array>;
  const v = {} as Record<HeadParamName, Float32Array>;
  for (const name of HEAD_PARAM_NAMES) {
    const x = previous[name];
    const avg = aggregated[name];
    if (avg.length !== x.length) throw new ShapeError(`server optimiser: aggregated head.${name} has ${avg.length} values, the previous ${x.length}`);
    const mPrev = state?.m[name];
    const vPrev = state?.v?.[name];
    if ((mPrev && mPrev.length !== x.length) || (vPrev && vPrev.length !== x.length)) throw new ShapeError(`server optimiser state for head.${name} does not match the head's ${x.length} values`);
    const out = new Float32Array(x.length);
    const mOut = new Float32Array(x.length);
    if (optimizer.kind === 'fedavgm') {
      const { lr, momentum } = optimizer;
      for (let i = 0; i < x.length; i++) {
        const mi = momentum * (mPrev ? mPrev[i] : 0) + (avg[i] - x[i]);
        mOut[i] = mi;
        out[i] = x[i] + lr * mi;
      }
    } else {
      const { lr, tau, beta1, beta2 } = optimizer;
      const vOut = new Float32Array(x.length);
      for (let i = 0; i < x.length; i++) {
        const delta = avg[i] - x[i];
        const mi = beta1 * (mPrev ? mPrev[i] : 0) + (1 - beta1) * delta;
        const vi = beta2 * (vPrev ? vPrev[i] : tau * tau) + (1 - beta2) * delta * delta;
        mOut[i] = mi;
        vOut[i] = vi;
        out[i] = x[i] + (lr * mi) / (Math.sqrt(vi) + tau);
      }
      v[name] = vOut;
    }
    m[name] = mOut;
    head[name] = out;
  }
  return { head, state: { step: (state?.step ?? 0) + 1, m, ...(optimizer.kind === 'fedadam' ? { v } : {}) } };
}
