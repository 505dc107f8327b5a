import { describe, expect, it } from 'vitest';
import { federationScore, formatSelectionRule, parseSelectionRule, selectVersion, splitHoldout, SELECTION_PATTERN } from './model-selection.js';

describe('model selection rule', () => {
  it('parses and formats none and loss[:holdout[:patience]]', () => {
    expect(parseSelectionRule('none')).toBeUndefined();
    expect(parseSelectionRule('loss')).toEqual({ metric: 'loss', holdout: 0.1, patience: 2 });
    expect(parseSelectionRule('loss:0.2:0')).toEqual({ metric: 'loss', holdout: 0.2, patience: 0 });
    for (const text of ['none', 'loss:0.1:2', 'loss:0.25:0']) {
      expect(formatSelectionRule(parseSelectionRule(text))).toBe(text);
      expect(new RegExp(SELECTION_PATTERN).test(text), text).toBe(true);
    }
    for (const bad of ['entropy', 'loss:1', 'loss:0', 'loss:0.1:1.5', 'loss:0.1:-1', 'none:1', 'loss:a']) expect(() => parseSelectionRule(bad), bad).toThrow(/model selection/);
  });

  it('holds out a seeded share, at least one image, never all, none of a single image', () => {
    const items = Array.from({ length: 20 }, (_, i) => `img${i}`);
    const { train, heldOut } = splitHoldout(items, 0.1, 3);
    expect(heldOut).toHaveLength(2);
    expect([...train, ...heldOut].sort()).toEqual([...items].sort());
    expect(train).toEqual(items.filter((i) => !heldOut.includes(i))); // input order kept
    expect(splitHoldout(items, 0.1, 3)).toEqual({ train, heldOut });
    expect(splitHoldout(items, 0.1, 4).heldOut).not.toEqual(heldOut);
    expect(splitHoldout(['a', 'b', 'c'], 0.01, 1).heldOut).toHaveLength(1);
    expect(splitHoldout(['a', 'b'], 0.9, 1).train).toHaveLength(1);
    expect(splitHoldout(['a'], 0.5, 1)).toEqual({ train: ['a'], heldOut: [] });
  });

  it('scores a model by the median of its participants, ignoring non-finite scores', () => {
    expect(federationScore([3, 1, 2])).toBe(2);
    expect(federationScore([4, 1])).toBe(2.5);
    expect(federationScore([5, Number.NaN, 1, 100])).toBe(5);
    expect(federationScore([])).toBeUndefined();
  });

  it('selects the best-scored version, the newest while scores still improve, and stops after the patience', () => {
    const scores = (...values: number[]) => new Map(values.map((v, version) => [version, v]));
    // Scores of versions 0..2 falling: the newest model (3) is taken.
    expect(selectVersion(scores(5, 4, 3), 3, 2)).toEqual({ selected: 3, best: 2, stop: false });
    // Version 2 was best, 3 worse: select 2, one version without a new best.
    expect(selectVersion(scores(5, 4, 3, 3.5), 4, 2)).toEqual({ selected: 2, best: 2, stop: false });
    expect(selectVersion(scores(5, 4, 3, 3.5, 3.2), 5, 2)).toEqual({ selected: 2, best: 2, stop: true });
    // Ties keep the earlier version; patience 0 never stops.
    expect(selectVersion(scores(1, 1, 1), 3, 0)).toEqual({ selected: 0, best: 0, stop: false });
    expect(selectVersion(new Map(), 4, 2)).toEqual({ selected: 4, stop: false });
    // Versions need not be consecutive (a failed round on the server).
    expect(selectVersion(new Map([[0, 3], [2, 1]]), 3, 1)).toEqual({ selected: 3, best: 2, stop: false });
  });
});
