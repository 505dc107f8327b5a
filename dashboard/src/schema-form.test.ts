import { describe, expect, it } from 'vitest';
import { bodyOf, checkValue, fieldsOf, initialValue, type JsonSchema } from './schema-form';

// The shape of FederationCreate in the server's OpenAPI document (TypeBox output), shortened.
const schema: JsonSchema = {
  type: 'object',
  required: ['name', 'backbone', 'k', 'strategy', 'modules', 'rounds'],
  properties: {
    name: { type: 'string', minLength: 1, maxLength: 10 },
    backbone: { type: 'object', required: ['sha256', 'channels'], properties: { sha256: { type: 'string', pattern: '^[0-9a-f]{4}$' }, channels: { type: 'integer', minimum: 1, maximum: 64 } } },
    k: { type: 'integer', minimum: 1, maximum: 1000 },
    strategy: { default: 'fedcc-kmeans', anyOf: [{ type: 'string', enum: ['fedavg'] }, { type: 'string', enum: ['fedcc-kmeans'] }] },
    modules: { type: 'object', default: {}, required: ['head'], properties: { head: { type: 'boolean', default: true } } },
    rounds: { type: 'integer', minimum: 1 },
    seed: { type: 'integer', minimum: 0, default: 0 },
  },
};

describe('fieldsOf', () => {
  it('flattens nested objects, reads choices from unions of literals, and treats fields with defaults as optional', () => {
    const fields = fieldsOf(schema);
    expect(fields.map((f) => [f.path, f.kind, f.required])).toEqual([
      ['name', 'string', true], ['backbone.sha256', 'string', true], ['backbone.channels', 'integer', true], ['k', 'integer', true],
      ['strategy', 'choice', false], ['modules.head', 'boolean', false], ['rounds', 'integer', true], ['seed', 'integer', false],
    ]);
    expect(fields.find((f) => f.path === 'strategy')!.choices).toEqual(['fedavg', 'fedcc-kmeans']);
    expect(fields.map(initialValue)).toEqual(['', '', '', '', 'fedcc-kmeans', true, '', '0']);
  });
});

describe('checkValue and bodyOf', () => {
  const fields = fieldsOf(schema);
  const field = (path: string) => fields.find((f) => f.path === path)!;

  it('apply the schema bounds, patterns, lengths and choices', () => {
    expect(checkValue(field('k'), '0')).toBe('must be at least 1');
    expect(checkValue(field('k'), '1001')).toBe('must be at most 1000');
    expect(checkValue(field('k'), '2.5')).toBe('must be a whole number');
    expect(checkValue(field('k'), 'x')).toBe('must be a whole number');
    expect(checkValue(field('backbone.sha256'), 'abcg')).toBe('must match ^[0-9a-f]{4}$');
    expect(checkValue(field('name'), 'x'.repeat(11))).toBe('must have at most 10 characters');
    expect(checkValue(field('strategy'), 'krum')).toBe('must be one of fedavg, fedcc-kmeans');
    expect(checkValue(field('name'), '  ')).toBe('required');
    expect(checkValue(field('seed'), '')).toBeUndefined();
  });

  it('build the nested body, leaving empty optional fields to the server', () => {
    const { body, errors } = bodyOf(fields, { name: ' roads ', 'backbone.sha256': 'ab12', 'backbone.channels': '8', k: '3', rounds: '2', seed: '', 'modules.head': false });
    expect(errors).toEqual({});
    expect(body).toEqual({ name: 'roads', backbone: { sha256: 'ab12', channels: 8 }, k: 3, strategy: 'fedcc-kmeans', modules: { head: false }, rounds: 2 });
  });

  it('return the errors by path and no body when a value is wrong', () => {
    expect(bodyOf(fields, { name: '', k: '0' })).toEqual({ errors: { name: 'required', 'backbone.sha256': 'required', 'backbone.channels': 'required', k: 'must be at least 1', rounds: 'required' } });
  });
});
