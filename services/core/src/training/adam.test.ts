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
});
