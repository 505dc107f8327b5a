// Initial head weights and centroids, seeded.

import type { HeadParams, HeadShape } from '../engines/engine.js';
import type { Rng } from '../math/rng.js';

function uniform(n: number, bound: number, rng: Rng): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (rng.next() * 2 - 1) * bound;
  return out;
}

/**
 * PyTorch's default Conv2d initialisation (kaiming_uniform with a = sqrt(5)): weights and biases
 * uniform in +-1/sqrt(fan_in), as STEGO's head starts.
 */
export function initHead(shape: HeadShape, rng: Rng): HeadParams {
  const { channels: C, codeDim: D } = shape;
  const bound = 1 / Math.sqrt(C);
  return {
    l1Weight: uniform(D * C, bound, rng),
    l1Bias: uniform(D, bound, rng),
    l2Weight: uniform(C * C, bound, rng),
    l2Bias: uniform(C, bound, rng),
    l3Weight: uniform(D * C, bound, rng),
    l3Bias: uniform(D, bound, rng),
  };
}

/** Centroids drawn from a standard normal, as STEGO's cluster probe (torch.randn). [k, codeDim] */
export function initCentroids(k: number, codeDim: number, rng: Rng): Float32Array {
  const out = new Float32Array(k * codeDim);
  for (let i = 0; i < out.length; i++) out[i] = rng.normal();
  return out;
}

export function cloneHead(head: HeadParams): HeadParams {
  return {
    l1Weight: head.l1Weight.slice(),
    l1Bias: head.l1Bias.slice(),
    l2Weight: head.l2Weight.slice(),
    l2Bias: head.l2Bias.slice(),
    l3Weight: head.l3Weight.slice(),
    l3Bias: head.l3Bias.slice(),
  };
}
