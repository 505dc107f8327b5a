import { describe, expect, it } from 'vitest';
import { HEAD_PARAM_NAMES, type HeadParams } from '../engines/engine.js';
import { ConfigError } from '../errors.js';
import { AggregationError } from './aggregation-error.js';
import { canonicalOrder, headParamLength, validateUpdate, validateUpdates, type ClientUpdate, type UpdateExpectation } from './update.js';

const EXPECTED: UpdateExpectation = { channels: 2, codeDim: 3, k: 2, backboneSha256: 'sha-a', featureKey: 'key-a' };

function makeUpdate(clientId: string, samples = 4): ClientUpdate {
  const { channels, codeDim, k } = EXPECTED;
  const head = {} as HeadParams;
  for (const name of HEAD_PARAM_NAMES) head[name] = new Float32Array(headParamLength(name, channels, codeDim)).fill(0.5);
  return { clientId, head, centroids: new Float32Array(k * codeDim).fill(1), samples, backboneSha256: 'sha-a', featureKey: 'key-a' };
}

/** Runs `fn`, expects an AggregationError and returns it. */
function aggregationError(fn: () => void): AggregationError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(AggregationError);
    return error as AggregationError;
  }
  throw new Error('expected an AggregationError');
}

describe('headParamLength', () => {
  it('gives [D, C], [D], [C, C], [C], [D, C], [D]', () => {
    expect(HEAD_PARAM_NAMES.map((name) => headParamLength(name, 2, 3))).toEqual([6, 3, 4, 2, 6, 3]);
  });
});

describe('validateUpdate', () => {
  it('accepts a well-formed update', () => {
    expect(() => validateUpdate(makeUpdate('a'), EXPECTED)).not.toThrow();
  });

  it.each(HEAD_PARAM_NAMES)('rejects a %s of the wrong length, naming client and tensor (400)', (name) => {
    const update = makeUpdate('site-7');
    update.head[name] = new Float32Array(update.head[name].length + 1);
    const error = aggregationError(() => validateUpdate(update, EXPECTED));
    expect(error.problem).toBe('shape-mismatch');
    expect(error.status).toBe(400);
    expect(error.clientId).toBe('site-7');
    expect(error.message).toContain('site-7');
    expect(error.message).toContain(`head.${name}`);
  });

  it('rejects centroids of the wrong length (400)', () => {
    const update = makeUpdate('b');
    update.centroids = new Float32Array(5);
    const error = aggregationError(() => validateUpdate(update, EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['shape-mismatch', 400, 'b']);
    expect(error.message).toContain('centroids has 5 values, expected [2, 3] = 6');
  });

  it('rejects a missing or non-Float32Array tensor', () => {
    const missing = makeUpdate('c');
    delete (missing.head as Partial<HeadParams>).l2Bias;
    expect(aggregationError(() => validateUpdate(missing, EXPECTED)).problem).toBe('shape-mismatch');
    const float64 = makeUpdate('c');
    (float64 as unknown as { centroids: Float64Array }).centroids = new Float64Array(6);
    expect(aggregationError(() => validateUpdate(float64, EXPECTED)).message).toContain('centroids is missing or not a Float32Array');
  });

  it.each([
    ['NaN in a head tensor', 'l3Weight', NaN],
    ['+Infinity in a head tensor', 'l1Bias', Infinity],
    ['-Infinity in the centroids', 'centroids', -Infinity],
    ['NaN in the centroids', 'centroids', NaN],
  ] as const)('rejects %s (400)', (_label, where, value) => {
    const update = makeUpdate('d');
    const target = where === 'centroids' ? update.centroids : update.head[where];
    target[1] = value;
    const error = aggregationError(() => validateUpdate(update, EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['non-finite', 400, 'd']);
    expect(error.message).toContain(`${where === 'centroids' ? 'centroids' : `head.${where}`} holds ${value} at index 1`);
  });

  it.each([0, -3, 1.5, NaN, Infinity])('rejects the sample count %s (400)', (samples) => {
    const error = aggregationError(() => validateUpdate(makeUpdate('e', samples), EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['bad-sample-count', 400, 'e']);
  });

  it('rejects another backbone or other features with 409', () => {
    const backbone = { ...makeUpdate('f'), backboneSha256: 'sha-b' };
    const error = aggregationError(() => validateUpdate(backbone, EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['backbone-mismatch', 409, 'f']);
    expect(error.message).toContain('sha-b');
    const features = { ...makeUpdate('f'), featureKey: 'key-b' };
    expect([aggregationError(() => validateUpdate(features, EXPECTED)).problem, aggregationError(() => validateUpdate(features, EXPECTED)).status]).toEqual([
      'feature-mismatch',
      409,
    ]);
  });

  it('rejects an empty client id', () => {
    expect(aggregationError(() => validateUpdate(makeUpdate(''), EXPECTED)).problem).toBe('bad-client-id');
  });

  it('rejects a malformed expectation with ConfigError', () => {
    expect(() => validateUpdate(makeUpdate('a'), { ...EXPECTED, k: 0 })).toThrow(ConfigError);
  });
});

describe('validateUpdates', () => {
  it('rejects an empty list (400)', () => {
    const error = aggregationError(() => validateUpdates([], EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['no-updates', 400, undefined]);
  });

  it('rejects a client id sent twice (409)', () => {
    const error = aggregationError(() => validateUpdates([makeUpdate('a'), makeUpdate('b'), makeUpdate('a')], EXPECTED));
    expect([error.problem, error.status, error.clientId]).toEqual(['duplicate-client', 409, 'a']);
  });

  it('reports the first bad update', () => {
    const bad = makeUpdate('z', 0);
    expect(aggregationError(() => validateUpdates([makeUpdate('a'), bad], EXPECTED)).clientId).toBe('z');
  });
});

describe('canonicalOrder', () => {
  it('sorts by client id in code unit order without touching the input', () => {
    const input = [{ clientId: 'b' }, { clientId: 'B' }, { clientId: 'a10' }, { clientId: 'a2' }];
    expect(canonicalOrder(input).map((u) => u.clientId)).toEqual(['B', 'a10', 'a2', 'b']);
    expect(input.map((u) => u.clientId)).toEqual(['b', 'B', 'a10', 'a2']);
  });
});
