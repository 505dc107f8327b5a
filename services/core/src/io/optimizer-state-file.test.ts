import { describe, expect, it } from 'vitest';
import { decodeOptimizerState, encodeOptimizerState } from './optimizer-state-file.js';
import { encodeSafetensors } from './safetensors.js';

const f32 = (...values: number[]) => Float32Array.from(values);

describe('optimizer state files', () => {
  const groups = {
    head: { step: 3, m: { a: f32(1, 2), b: f32(3) }, v: { a: f32(0.5, 0.25), b: f32(0.125) } },
    centroids: { step: 7, m: { centroids: f32(-1, 0, 1) } },
  };
  const lengths = { head: { a: 2, b: 1 }, centroids: { centroids: 3 } };

  it('round-trips steps and moments bit for bit, v only where written', () => {
    const decoded = decodeOptimizerState(encodeOptimizerState('adam', groups), 'adam', lengths)!;
    expect(decoded).toEqual(groups);
    expect(decoded.centroids.v).toBeUndefined();
  });

  it('ignores a state written by another optimiser', () => {
    expect(decodeOptimizerState(encodeOptimizerState('fedavgm:1:0.9', groups), 'fedadam:0.01:0.001:0.9:0.99', lengths)).toBeUndefined();
  });

  it('refuses states that do not fit, are incomplete or are not optimizer states', () => {
    const bytes = encodeOptimizerState('adam', groups);
    expect(() => decodeOptimizerState(bytes, 'adam', { ...lengths, head: { a: 3, b: 1 } })).toThrow(/"head.m.a" has 2 values, expected 3/);
    expect(() => decodeOptimizerState(bytes, 'adam', { head: { a: 2, b: 1 } })).toThrow(/unexpected tensors "centroids.m.centroids"/);
    expect(() => decodeOptimizerState(bytes, 'adam', { ...lengths, other: { x: 1 } })).toThrow(/no step count for "other"/);
    const partial = encodeOptimizerState('adam', { head: { step: 1, m: { a: f32(1, 2), b: f32(3) }, v: { a: f32(1, 1) } } });
    expect(() => decodeOptimizerState(partial, 'adam', { head: { a: 2, b: 1 } })).toThrow(/"head.v.b" is missing/);
    expect(() => decodeOptimizerState(encodeSafetensors({ x: { dims: [1], data: f32(1) } }, { format: 'fuss-segmentation-model' }), 'adam', lengths)).toThrow(/not an optimizer state/);
    const nan = encodeOptimizerState('adam', { head: { step: 1, m: { a: f32(Number.NaN, 2), b: f32(3) } } });
    expect(() => decodeOptimizerState(nan, 'adam', { head: { a: 2, b: 1 } })).toThrow(/non-finite/);
  });
});
