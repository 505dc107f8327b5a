// Server optimisers (FedAvgM, FedAdam): parsing, one step on hand-computed numbers, state carried
// across rounds, and whole rounds through a strategy (E off refused, driven from storage the same).

import { describe, expect, it } from 'vitest';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { initCentroids, initHead } from '../head/head-init.js';
import { createRng } from '../math/rng.js';
import { createStrategy } from './index.js';
import { runAggregationAsync } from './aggregation-steps.js';
import { applyServerOptimizer, formatServerOptimizer, parseServerOptimizer, SERVER_OPTIMIZER_PATTERN, type ServerOptimizerState } from './server-optimizer.js';
import type { AggregationContext } from './strategy.js';
import type { ClientUpdate } from './update.js';

/** A head of C = 1, D = 1 whose every tensor holds `value` (l2Weight is [1, 1] too). */
function constantHead(value: number): HeadParams {
  return Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, Float32Array.of(value)])) as unknown as HeadParams;
}

describe('server optimiser maths', () => {
  it('parses and formats every form, fills defaults, and refuses malformed ones', () => {
    expect(parseServerOptimizer('none')).toEqual({ kind: 'none' });
    expect(parseServerOptimizer('fedavgm')).toEqual({ kind: 'fedavgm', lr: 1, momentum: 0.9 });
    expect(parseServerOptimizer('fedavgm:0.5')).toEqual({ kind: 'fedavgm', lr: 0.5, momentum: 0.9 });
    expect(parseServerOptimizer('fedadam')).toEqual({ kind: 'fedadam', lr: 0.01, tau: 0.001, beta1: 0.9, beta2: 0.99 });
    expect(parseServerOptimizer('fedadam:0.1:1e-4')).toEqual({ kind: 'fedadam', lr: 0.1, tau: 1e-4, beta1: 0.9, beta2: 0.99 });
    for (const text of ['none', 'fedavgm:1:0.9', 'fedadam:0.01:0.001:0.9:0.99', 'fedadam:0.1:0.0001:0.5:0.9']) {
      expect(formatServerOptimizer(parseServerOptimizer(text)), text).toBe(text);
      expect(new RegExp(SERVER_OPTIMIZER_PATTERN).test(text), text).toBe(true);
    }
    for (const bad of ['adam', 'fedavgm:0', 'fedavgm:1:1', 'fedadam:x', 'fedadam:0.1:0', 'fedadam:0.1:0.1:1', 'none:1', 'fedavgm:1:0.5:2', 'fedavgm:']) {
      expect(() => parseServerOptimizer(bad), bad).toThrow(/server optimiser/);
    }
  });

  it('none returns the average; FedAvgM with lr 1 and momentum 0 is FedAvg', () => {
    const previous = constantHead(1);
    const average = constantHead(3);
    expect(applyServerOptimizer({ kind: 'none' }, previous, average, undefined)).toEqual({ head: average });
    const { head, state } = applyServerOptimizer({ kind: 'fedavgm', lr: 1, momentum: 0 }, previous, average, undefined);
    expect(head).toEqual(average);
    expect(state!.step).toBe(1);
  });

  it('FedAvgM: m = 0.9 m + Δ, θ + lr m, across two rounds', () => {
    const optimizer = { kind: 'fedavgm', lr: 0.5, momentum: 0.9 } as const;
    // Round 1: Δ = 2, m = 2, θ = 1 + 0.5 * 2 = 2.
    const first = applyServerOptimizer(optimizer, constantHead(1), constantHead(3), undefined);
    expect(first.head.l2Weight[0]).toBe(2);
    expect(first.state!.m.l2Weight[0]).toBe(2);
    // Round 2 from θ = 2 with average 2.5: Δ = 0.5, m = 0.9 * 2 + 0.5 = 2.3, θ = 2 + 1.15 = 3.15.
    const second = applyServerOptimizer(optimizer, first.head, constantHead(2.5), first.state);
    expect(second.head.l2Weight[0]).toBeCloseTo(3.15, 6);
    expect(second.state!.m.l2Weight[0]).toBeCloseTo(2.3, 6);
    expect(second.state!.step).toBe(2);
    expect(second.state!.v).toBeUndefined();
  });

  it('FedAdam: Reddi et al. Algorithm 2 with v_{-1} = τ² and no bias correction', () => {
    const optimizer = { kind: 'fedadam', lr: 0.1, tau: 0.01, beta1: 0.9, beta2: 0.99 } as const;
    // Δ = 2: m = 0.2, v = 0.99 * 1e-4 + 0.01 * 4 = 0.040099, θ = 1 + 0.1 * 0.2 / (sqrt(v) + 0.01).
    const first = applyServerOptimizer(optimizer, constantHead(1), constantHead(3), undefined);
    const v1 = 0.99 * 1e-4 + 0.04;
    expect(first.state!.v!.l1Bias[0]).toBeCloseTo(v1, 7);
    expect(first.head.l1Bias[0]).toBeCloseTo(1 + (0.1 * 0.2) / (Math.sqrt(v1) + 0.01), 6);
    // Round 2: Δ = 0, the moments decay and θ keeps moving along m.
    const theta = first.head.l1Bias[0];
    const second = applyServerOptimizer(optimizer, first.head, first.head, first.state);
    const m2 = 0.9 * first.state!.m.l1Bias[0];
    const v2 = 0.99 * first.state!.v!.l1Bias[0];
    expect(second.head.l1Bias[0]).toBeCloseTo(theta + (0.1 * m2) / (Math.sqrt(v2) + 0.01), 6);
  });

  it('never modifies its inputs', () => {
    const previous = constantHead(1);
    const average = constantHead(2);
    const state: ServerOptimizerState = { step: 1, m: constantHead(0.5) as never, v: constantHead(0.25) as never };
    applyServerOptimizer({ kind: 'fedadam', lr: 0.1, tau: 0.01, beta1: 0.9, beta2: 0.99 }, previous, average, state);
    expect(previous).toEqual(constantHead(1));
    expect(average).toEqual(constantHead(2));
    expect(state.m.l1Weight[0]).toBe(0.5);
  });
});

describe('server optimiser in a round', () => {
  const shape = { channels: 3, codeDim: 2 };
  const K = 2;
  const rng = createRng(5);
  const previous = { head: initHead(shape, rng), centroids: initCentroids(K, shape.codeDim, rng) };
  const updates: ClientUpdate[] = [0, 1, 2].map((i) => {
    const local = createRng(100 + i);
    return { clientId: `client-${i}`, head: initHead(shape, local), centroids: initCentroids(K, shape.codeDim, local), samples: 10 + i, backboneSha256: 'a'.repeat(64), featureKey: 'k' };
  });
  const context = (serverOptimizer: string, serverState?: ServerOptimizerState, head = true): AggregationContext => ({
    k: K, ...shape, seed: 1, modules: { head, centroids: true, weighted: true }, previous, serverOptimizer: parseServerOptimizer(serverOptimizer), serverState,
  });

  it('steps from the previous head along the average, keeps centroids as the strategy merges them, returns the state', () => {
    const strategy = createStrategy('fedcc-kmeans');
    const plain = strategy.aggregate(updates, context('none'));
    expect(plain.serverState).toBeUndefined();
    const momentum = strategy.aggregate(updates, context('fedavgm:0.5:0.9'));
    expect(momentum.details.serverOptimizer).toBe('fedavgm:0.5:0.9');
    expect(Array.from(momentum.centroids)).toEqual(Array.from(plain.centroids));
    for (const name of HEAD_PARAM_NAMES) {
      for (let i = 0; i < previous.head[name].length; i++) {
        expect(momentum.head[name][i]).toBeCloseTo(previous.head[name][i] + 0.5 * (plain.head[name][i] - previous.head[name][i]), 6);
      }
    }
    expect(momentum.serverState!.step).toBe(1);
    const next = strategy.aggregate(updates, context('fedavgm:0.5:0.9', momentum.serverState));
    expect(next.serverState!.step).toBe(2);
  });

  it('gives the same result driven from storage', async () => {
    const strategy = createStrategy('fedavg');
    const first = strategy.aggregate(updates, context('fedadam'));
    const stored = await runAggregationAsync(strategy.steps(updates.map((u) => ({ clientId: u.clientId, samples: u.samples })), context('fedadam')), async (i) => updates[i]);
    expect(stored.head).toEqual(first.head);
    expect(stored.serverState).toEqual(first.serverState);
  });

  it('refuses a server optimiser without module E', () => {
    expect(() => createStrategy('fedavg').aggregate(updates, context('fedadam', undefined, false))).toThrow(/needs module E/);
  });
});
