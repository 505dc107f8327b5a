// GET/PUT /v1/federations/{id}/classes through the HTTP API (inject) on a fresh PGlite database: the
// admin names classes, members read them, and every hostile or broken request is a 4xx that leaves
// the stored names as they were.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { freshPglite, type TestDatabase } from './test-support/databases.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const admin = { authorization: `Bearer ${ADMIN}` };

let test: TestDatabase;
let app: FastifyInstance;

beforeAll(async () => {
  test = await freshPglite();
  await test.db.migrate();
  app = await buildApp({ db: test.db, config: { adminToken: ADMIN } });
});
afterAll(async () => {
  await app.close();
  await test.dispose();
});

async function federation(k = 4) {
  const created = await app.inject({
    method: 'POST',
    url: '/v1/federations',
    headers: admin,
    payload: { name: `classes-${Math.random()}`, backbone: { id: 'tiny', sha256: 'c'.repeat(64), featureKey: 'key1', channels: 8 }, codeDim: 4, k, rounds: 1, localSteps: 1, maxParticipants: 1 },
  });
  expect(created.statusCode, created.body).toBe(201);
  const id = created.json().id as string;
  const token = (await app.inject({ method: 'POST', url: `/v1/federations/${id}/participants`, headers: admin, payload: { name: 'site' } })).json().token as string;
  return { id, member: { authorization: `Bearer ${token}` } };
}

const put = (id: string, payload: unknown, headers: Record<string, string> = admin) =>
  app.inject({ method: 'PUT', url: `/v1/federations/${id}/classes`, headers: { ...headers, 'content-type': 'application/json' }, payload: typeof payload === 'string' ? payload : JSON.stringify(payload) });
const get = (id: string, headers: Record<string, string> = admin) => app.inject({ method: 'GET', url: `/v1/federations/${id}/classes`, headers });

describe('class names and colours', () => {
  it('are empty at first, replaced as a whole by the admin, and read by members, sorted by id', async () => {
    const f = await federation();
    expect((await get(f.id, f.member)).json()).toEqual({ classes: [] });
    const set = await put(f.id, { classes: [{ id: 3, name: 'road', colour: '#804080' }, { id: 0, name: 'sky' }] });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json()).toEqual({ classes: [{ id: 0, name: 'sky' }, { id: 3, name: 'road', colour: '#804080' }] });
    expect((await get(f.id, f.member)).json()).toEqual(set.json());
    // A second PUT replaces the set; names may hold any printable text, including quotes and markup.
    const again = await put(f.id, { classes: [{ id: 1, name: 'façade <"building">', colour: '#ABCDEF' }] });
    expect(again.json()).toEqual({ classes: [{ id: 1, name: 'façade <"building">', colour: '#abcdef' }] });
    expect((await put(f.id, { classes: [] })).json()).toEqual({ classes: [] });
  });

  it('refuse bad tokens before reading the body: 401 without or with an unknown token, 403 for members writing or other federations', async () => {
    const f = await federation();
    const other = await federation();
    await put(f.id, { classes: [{ id: 0, name: 'sky' }] });
    const body = { classes: [{ id: 1, name: 'evil' }] };
    expect((await put(f.id, body, {})).statusCode).toBe(401);
    expect((await put(f.id, body, { authorization: 'Bearer fuss_p_not-a-token' })).statusCode).toBe(401);
    expect((await put(f.id, body, { authorization: 'Basic abc' })).statusCode).toBe(401);
    expect((await put(f.id, body, f.member)).statusCode).toBe(403);
    // A broken body with a bad token is still 401: the token is checked first.
    expect((await put(f.id, '{not json', {})).statusCode).toBe(401);
    expect((await get(f.id, {})).statusCode).toBe(401);
    expect((await get(f.id, other.member)).statusCode).toBe(403);
    expect((await put(f.id, body, other.member)).statusCode).toBe(403);
    expect((await get(f.id, f.member)).json()).toEqual({ classes: [{ id: 0, name: 'sky' }] });
  });

  it('answer 400 with a message for every broken set, and keep the stored names', async () => {
    const f = await federation(4);
    const stored = { classes: [{ id: 2, name: 'car', colour: '#102030' }] };
    await put(f.id, stored);
    const cases: [unknown, RegExp][] = [
      [{ classes: [{ id: 4, name: 'beyond K' }] }, /id 4 is not an integer in 0\.\.3/],
      [{ classes: [{ id: -1, name: 'negative' }] }, /must be >= 0/],
      [{ classes: [{ id: 1.5, name: 'fraction' }] }, /must be integer/],
      [{ classes: [{ id: 1, name: 'a' }, { id: 1, name: 'b' }] }, /id 1 is given more than once/],
      [{ classes: Array.from({ length: 5 }, (_, i) => ({ id: i % 4, name: `c${i}` })) }, /got 5 classes, but the model has only 4/],
      [{ classes: Array.from({ length: 1001 }, (_, i) => ({ id: i, name: 'x' })) }, /must NOT have more than 1000 items/],
      [{ classes: [{ id: 0, name: '' }] }, /fewer than 1 characters/],
      [{ classes: [{ id: 0, name: '   ' }] }, /empty/],
      [{ classes: [{ id: 0, name: 'x'.repeat(65) }] }, /more than 64 characters/],
      [{ classes: [{ id: 0, name: 'nul\u0000byte' }] }, /NUL characters|must match pattern/], // the server refuses NUL in any text
      [{ classes: [{ id: 0, name: 'new\nline' }] }, /must match pattern/],
      [{ classes: [{ id: 0, name: 'x', colour: 'red' }] }, /must match pattern/],
      [{ classes: [{ id: 0, name: 'x', colour: '#1234567' }] }, /must match pattern/],
      [{ classes: [{ id: 0, name: 'x', extra: 1 }] }, /additional properties/],
      [{ classes: [{ name: 'no id' }] }, /required property 'id'/],
      [{ classes: 'sky' }, /body\/classes\/0 must be object/], // coerced to ['sky'] by the validator, then refused
      [{}, /required property 'classes'/],
      ['{"classes": [', /JSON|Unexpected|body/i],
    ];
    for (const [payload, message] of cases) {
      const response = await put(f.id, payload);
      expect(response.statusCode, JSON.stringify(payload).slice(0, 80)).toBe(400);
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(response.json().detail, JSON.stringify(payload).slice(0, 80)).toMatch(message);
    }
    expect((await get(f.id)).json()).toEqual(stored);
  });

  it('answer 404 for an unknown federation, 400 for a malformed id or a text body, 413 for a huge body', async () => {
    const missing = '00000000-0000-4000-8000-000000000000';
    expect((await get(missing)).statusCode).toBe(404);
    expect((await put(missing, { classes: [] })).statusCode).toBe(404);
    expect((await get('not-a-uuid')).statusCode).toBe(400);
    const f = await federation();
    const huge = JSON.stringify({ classes: [{ id: 0, name: 'x'.repeat(300 * 1024) }] });
    expect((await put(f.id, huge)).statusCode).toBe(413);
    const text = await app.inject({ method: 'PUT', url: `/v1/federations/${f.id}/classes`, headers: { ...admin, 'content-type': 'text/plain' }, payload: 'sky' });
    expect(text.statusCode).toBe(400);
    expect(text.json().detail).toMatch(/body must be object/);
  });

  it('go with their federation when it is deleted (cascade)', async () => {
    const f = await federation();
    await put(f.id, { classes: [{ id: 0, name: 'sky' }] });
    await test.db.prisma.federation.delete({ where: { id: f.id } });
    expect(await test.db.prisma.federationClass.count({ where: { federationId: f.id } })).toBe(0);
  });
});
