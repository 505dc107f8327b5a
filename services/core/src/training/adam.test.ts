import { describe, expect, it } from 'vitest';
import { Adam } from './adam.js';

describe('Adam', () => {
  it('matches hand-computed torch.optim.Adam steps', () => {
    const theta = new Float32Array([1, -1, 0.5]);
    const adam = new Adam({ lr: 0.1 });
    // Step 1: m_hat = g, v_hat = g^2, so each parameter moves by lr * g / (|g| + eps) = lr * sign(g).
    adam.updateInPlace({ theta }, { theta: new Float32Array([2, -0.5, 0]) });
    expect(theta[0]).toBeCloseTo(0.9, 6);
    expect(theta[1]).toBeCloseTo(-0.9, 6);
    expect(theta[2]).toBeCloseTo(0.5, 6);
    // Step 2 with g = 1 on the first parameter: m = 0.9*0.2 + 0.1 = 0.28 -> m_hat = 0.28 / 0.19;
    // v = 0.999*0.004 + 0.001 = 0.004996 -> v_hat = 0.004996 / 0.001999.
    adam.updateInPlace({ theta }, { theta: new Float32Array([1, 0, 0]) });
    const expected = 0.9 - (0.1 * (0.28 / 0.19)) / (Math.sqrt(0.004996 / 0.001999) + 1e-8);
    expect(theta[0]).toBeCloseTo(expected, 5);
  });

  it('continues from a snapshot exactly as without the interruption, and scales a step\'s learning rate', () => {
    const grads = [[0.3, -2], [1, 0.5], [-0.2, 0.1], [0.7, 0.7]].map((g) => Float32Array.from(g));
    const straight = new Float32Array([1, 2]);
    const adam = new Adam({ lr: 0.05 });
    for (const g of grads) adam.updateInPlace({ x: straight }, { x: g });
    const resumed = new Float32Array([1, 2]);
    const first = new Adam({ lr: 0.05 });
    for (const g of grads.slice(0, 2)) first.updateInPlace({ x: resumed }, { x: g });
    const state = first.snapshot();
    const second = new Adam({ lr: 0.05 }, state);
    state.m.x[0] = 99; // the optimiser holds a copy
    for (const g of grads.slice(2)) second.updateInPlace({ x: resumed }, { x: g });
    expect(Array.from(resumed)).toEqual(Array.from(straight));
    expect(second.state.step).toBe(4);

    const half = new Float32Array([1]);
    new Adam({ lr: 0.1 }).updateInPlace({ x: half }, { x: Float32Array.of(3) }, 0.5);
    expect(half[0]).toBeCloseTo(0.95, 6);
  });
});
