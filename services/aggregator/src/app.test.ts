// The HTTP surface built so far, through inject() on a fresh PGlite database.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { freshPglite, type TestDatabase } from './test-support/databases.js';
import { decodeModel, FEDERATION_DEFAULTS } from '@fuss/core';
import { loadConfig } from './config.js';

const ADMIN = 'admin-token-for-tests-0123456789';
let test: TestDatabase;
let app: FastifyInstance;
const admin = { authorization: `Bearer ${ADMIN}` };

const federationBody = {
  name: 'road-scenes',
  backbone: { id: 'tiny-cnn', sha256: 'a'.repeat(64), featureKey: 'key1', channels: 8 },
  codeDim: 4,
  k: 3,
  rounds: 2,
  localSteps: 5,
  maxParticipants: 3,
};

beforeAll(async () => {
  test = await freshPglite();
  await test.db.migrate();
  app = await buildApp({ db: test.db, config: { adminToken: ADMIN } });
});
afterAll(async () => {
  await app.close();
  await test.dispose();
});

async function createFederation(body: object = federationBody) {
  const response = await app.inject({ method: 'POST', url: '/v1/federations', headers: admin, payload: body });
  expect(response.statusCode, response.body).toBe(201);
  return response.json();
}

describe('federations and participants', () => {
  it('creates a federation with defaults, its initial model and round 1', async () => {
    const federation = await createFederation();
    expect(federation).toMatchObject({ name: 'road-scenes', strategy: FEDERATION_DEFAULTS.strategy, modules: { weighted: true, head: true, centroids: true }, minParticipants: 1, latestModelVersion: 0, status: 'active' });
    const rounds = await test.db.prisma.round.findMany({ where: { federationId: federation.id } });
    expect(rounds.map((r) => [r.number, r.state, r.baseVersion])).toEqual([[1, 'open', 0]]);
    const list = await app.inject({ method: 'GET', url: '/v1/federations', headers: admin });
    expect(list.json().federations.map((f: { id: string }) => f.id)).toContain(federation.id);
  });

  it('enrols participants with a token shown once and stored hashed; the token reads its own federation and model', async () => {
    const federation = await createFederation({ ...federationBody, name: 'second' });
    const enrol = await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants`, headers: admin, payload: { name: 'site-a' } });
    expect(enrol.statusCode).toBe(201);
    const { token, id } = enrol.json();
    expect(token).toMatch(/^fuss_p_/);
    const stored = await test.db.prisma.participant.findUniqueOrThrow({ where: { id } });
    expect(stored.tokenHash).not.toContain(token);
    expect(stored.tokenHash).toMatch(/^[0-9a-f]{64}$/);
    const mine = { authorization: `Bearer ${token}` };
    expect((await app.inject({ method: 'GET', url: `/v1/federations/${federation.id}`, headers: mine })).statusCode).toBe(200);
    const model = await app.inject({ method: 'GET', url: `/v1/federations/${federation.id}/models/latest`, headers: mine });
    expect(model.statusCode).toBe(200);
    expect(model.headers['x-model-version']).toBe('0');
    const decoded = decodeModel(model.rawPayload, { backboneSha256: 'a'.repeat(64), k: 3, codeDim: 4, channels: 8 });
    expect(decoded.version).toBe(0);
    // The same bytes as version 0, and a participant cannot act as admin or read another federation.
    expect((await app.inject({ method: 'GET', url: `/v1/federations/${federation.id}/models/0`, headers: mine })).rawPayload.equals(model.rawPayload)).toBe(true);
    expect((await app.inject({ method: 'GET', url: '/v1/federations', headers: mine })).statusCode).toBe(403);
    const other = await createFederation({ ...federationBody, name: 'third' });
    const foreign = await app.inject({ method: 'GET', url: `/v1/federations/${other.id}`, headers: mine });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.json().detail).toMatch(/another federation/);
    const duplicate = await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants`, headers: admin, payload: { name: 'site-a' } });
    expect(duplicate.statusCode).toBe(409);
  });

  it('answers bad input with problem details and leaves the database unchanged', async () => {
    const before = await test.db.prisma.federation.count();
    const cases: [object, number, RegExp][] = [
      [{ ...federationBody, k: 0 }, 400, /k/],
      [{ ...federationBody, strategy: 'fedmagic' }, 400, /strategy/],
      [{ ...federationBody, backbone: { ...federationBody.backbone, sha256: 'xyz' } }, 400, /sha256/],
      [{ ...federationBody, minParticipants: 5 }, 400, /minParticipants \(5\) exceeds maxParticipants \(3\)/],
      [{ ...federationBody, surprise: 1 }, 400, /additional/],
    ];
    for (const [body, status, detail] of cases) {
      const response = await app.inject({ method: 'POST', url: '/v1/federations', headers: admin, payload: body });
      expect(response.statusCode).toBe(status);
      expect(response.headers['content-type']).toMatch(/application\/problem\+json/);
      expect(response.json().detail).toMatch(detail);
    }
    const noToken = await app.inject({ method: 'POST', url: '/v1/federations', payload: federationBody });
    expect(noToken.statusCode).toBe(401);
    const wrong = await app.inject({ method: 'POST', url: '/v1/federations', headers: { authorization: 'Bearer nope' }, payload: federationBody });
    expect(wrong.statusCode).toBe(401);
    const missing = await app.inject({ method: 'GET', url: '/v1/federations/00000000-0000-4000-8000-000000000000', headers: admin });
    expect(missing.statusCode).toBe(404);
    const tooBig = await app.inject({ method: 'POST', url: '/v1/federations', headers: { ...admin, 'content-type': 'application/json' }, payload: JSON.stringify({ ...federationBody, name: 'x'.repeat(2 * 1024 * 1024) }) });
    expect(tooBig.statusCode).toBe(413);
    expect(await test.db.prisma.federation.count()).toBe(before);
  });
});

describe('operations and documentation', () => {
  it('reports health and readiness', async () => {
    expect((await app.inject({ method: 'GET', url: '/healthz' })).json()).toEqual({ status: 'ok' });
    expect((await app.inject({ method: 'GET', url: '/readyz' })).json()).toEqual({ status: 'ready', database: 'pglite' });
  });

  it('serves an OpenAPI document where every operation has an id, a summary and problem responses', async () => {
    const doc = (await app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect(doc.openapi).toMatch(/^3\./);
    const operations = Object.values(doc.paths as Record<string, Record<string, { operationId?: string; summary?: string; responses: Record<string, unknown> }>>).flatMap((p) => Object.values(p));
    expect(operations.length).toBeGreaterThanOrEqual(7);
    for (const op of operations) {
      expect(op.operationId).toBeTruthy();
      expect(op.summary).toBeTruthy();
      expect(op.responses['400']).toBeDefined();
    }
    expect((await app.inject({ method: 'GET', url: '/docs' })).statusCode).toBeLessThan(400);
  });

  it('refuses to start on a public address without an admin token', () => {
    expect(() => loadConfig({ HOST: '0.0.0.0' })).toThrow(/without FUSS_ADMIN_TOKEN/);
    expect(loadConfig({ HOST: '0.0.0.0', FUSS_ADMIN_TOKEN: ADMIN }).host).toBe('0.0.0.0');
    expect(loadConfig({}).host).toBe('127.0.0.1');
  });
});

describe('the committed OpenAPI document', () => {
  it('equals what the server serves (run `npm run openapi` after changing a route)', async () => {
    const { readFile } = await import('node:fs/promises');
    const committed = JSON.parse(await readFile(new URL('../../../openapi/openapi.json', import.meta.url), 'utf8'));
    expect(committed).toEqual(JSON.parse(JSON.stringify(app.swagger())));
  });

  it('serves Prometheus metrics', async () => {
    await app.inject({ method: 'GET', url: '/healthz' });
    const metrics = await app.inject({ method: 'GET', url: '/metrics' });
    expect(metrics.statusCode).toBe(200);
    expect(metrics.body).toMatch(/fuss_http_requests_total\{method="GET",route="\/healthz",status="200"\} \d+/);
  });
});

describe('access, limits and configuration', () => {
  it('authenticates before reading a body: a large body without a token is a 401, with the admin token a 413', async () => {
    const big = JSON.stringify({ name: 'x'.repeat(2 * 1024 * 1024) });
    expect((await app.inject({ method: 'POST', url: '/v1/federations', headers: { 'content-type': 'application/json' }, payload: big })).statusCode).toBe(401);
    const tooLarge = await app.inject({ method: 'POST', url: '/v1/federations', headers: { ...admin, 'content-type': 'application/json' }, payload: big });
    expect(tooLarge.statusCode).toBe(413);
  });

  it('refuses a federation whose model would not fit the update limit, saying why', async () => {
    const response = await app.inject({ method: 'POST', url: '/v1/federations', headers: admin, payload: { ...federationBody, name: 'wide', backbone: { ...federationBody.backbone, channels: 8192 } } });
    expect(response.statusCode).toBe(400);
    expect(response.json().detail).toMatch(/8192 channels.*takes 256\.\d MiB, above this server's update limit of 64\.0 MiB \(FUSS_UPDATE_LIMIT\)/);
  });

  it('caps problem details and refuses NUL characters in any JSON body or query', async () => {
    const { capText } = await import('./plugins/problem-details.js');
    expect(capText('a'.repeat(5000))).toMatch(/^a{1000}\.\.\. \(4000 more characters\)$/);
    const nul = await app.inject({ method: 'POST', url: '/v1/federations', headers: admin, payload: { ...federationBody, name: 'a\u0000b' } });
    expect([nul.statusCode, nul.json().detail]).toEqual([400, 'text must not contain NUL characters']);
  });

  it('needs a declared access on every /v1 route (a route without one is refused when it is added)', async () => {
    const Fastify = (await import('fastify')).default;
    const { authPlugin } = await import('./plugins/auth.js');
    const bare = Fastify();
    await bare.register(authPlugin, { adminToken: ADMIN, federations: { participantByToken: async () => undefined } });
    expect(() => bare.get('/v1/forgotten', async () => 'open')).toThrow(/declares no config\.access/);
    await bare.close();
  });

  it('without an admin token answers only requests addressed to a loopback name, and protects /metrics with its token', async () => {
    const open = await buildApp({ db: test.db, config: { metricsToken: 'metrics-token-0123456789' } });
    try {
      expect((await open.inject({ method: 'GET', url: '/v1/federations' })).statusCode).toBe(200);
      expect((await open.inject({ method: 'GET', url: '/v1/federations', headers: { host: 'fuss.attacker.example' } })).statusCode).toBe(403);
      expect((await open.inject({ method: 'GET', url: '/healthz', headers: { host: 'fuss.attacker.example' } })).statusCode).toBe(403);
      expect((await open.inject({ method: 'GET', url: '/v1/federations', headers: { origin: 'https://attacker.example' } })).statusCode).toBe(403);
      expect((await open.inject({ method: 'GET', url: '/v1/federations', headers: { host: '127.0.0.1:8080', origin: 'http://localhost:8080' } })).statusCode).toBe(200);
      expect((await open.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode).toBe(401);
      expect((await open.inject({ method: 'GET', url: '/metrics', headers: { authorization: 'Bearer metrics-token-0123456789' } })).statusCode).toBe(200);
    } finally {
      await open.close();
    }
  });

  it('reads every limit from its variable within bounds, and the README documents each one', async () => {
    const { LIMIT_SETTINGS } = await import('./config.js');
    expect(loadConfig({ FUSS_IMAGE_MAX_PIXELS: '4000000' }).limits.imagePixels).toBe(4_000_000);
    expect(() => loadConfig({ FUSS_UPDATE_LIMIT: '12abc' })).toThrow(/FUSS_UPDATE_LIMIT must be an integer in 4096\.\./);
    expect(() => loadConfig({ FUSS_SEGMENT_WORKERS: '0' })).toThrow(/FUSS_SEGMENT_WORKERS/);
    const { readFile } = await import('node:fs/promises');
    const readme = await readFile(new URL('../../../README.md', import.meta.url), 'utf8');
    for (const setting of LIMIT_SETTINGS) expect(readme, setting.env).toContain(`\`${setting.env}\``);
    for (const variable of ['DATABASE_URL', 'FUSS_DB_DIR', 'FUSS_BLOB_STORE', 'FUSS_BLOB_DIR', 'FUSS_ADMIN_TOKEN', 'FUSS_METRICS_TOKEN']) expect(readme).toContain(`\`${variable}\``);
  });
});

describe('participant management', () => {
  it('lists participants with their activity, revokes and rotates tokens; a dead token is refused on every route', async () => {
    const federation = await createFederation({ ...federationBody, name: 'managed' });
    const enrol = async (name: string) => (await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants`, headers: admin, payload: { name } })).json();
    const [a, b] = [await enrol('site-a'), await enrol('site-b')];
    const as = (token: string) => ({ authorization: `Bearer ${token}` });
    expect((await app.inject({ method: 'GET', url: '/v1/participants/me', headers: as(a.token) })).statusCode).toBe(200);
    const listed = (await app.inject({ method: 'GET', url: `/v1/federations/${federation.id}/participants`, headers: admin })).json().participants;
    expect(listed.map((p: { name: string; enrolmentIndex: number; revoked: boolean; roundsContributed: number }) => [p.name, p.enrolmentIndex, p.revoked, p.roundsContributed])).toEqual([['site-a', 0, false, 0], ['site-b', 1, false, 0]]);
    expect(listed[0].lastSeenAt).not.toBeNull();
    expect(listed[1].lastSeenAt).toBeNull();
    // Participants cannot manage each other.
    expect((await app.inject({ method: 'GET', url: `/v1/federations/${federation.id}/participants`, headers: as(b.token) })).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: `/v1/federations/${federation.id}/participants/${a.id}`, headers: as(b.token) })).statusCode).toBe(403);

    const revoked = await app.inject({ method: 'DELETE', url: `/v1/federations/${federation.id}/participants/${a.id}`, headers: admin });
    expect(revoked.json()).toMatchObject({ name: 'site-a', revoked: true });
    expect((await app.inject({ method: 'DELETE', url: `/v1/federations/${federation.id}/participants/${a.id}`, headers: admin })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants/${a.id}/token`, headers: admin })).statusCode).toBe(409);
    const rotated = (await app.inject({ method: 'POST', url: `/v1/federations/${federation.id}/participants/${b.id}/token`, headers: admin })).json();
    expect(rotated.token).toMatch(/^fuss_p_/);
    expect(rotated.token).not.toBe(b.token);
    expect((await app.inject({ method: 'GET', url: '/v1/participants/me', headers: as(rotated.token) })).json()).toMatchObject({ name: 'site-b' });
    const other = await createFederation({ ...federationBody, name: 'unrelated' });
    expect((await app.inject({ method: 'DELETE', url: `/v1/federations/${other.id}/participants/${b.id}`, headers: admin })).statusCode).toBe(404);

    // Every operation of the API, with the revoked token and with the rotated-away one: 401 or 403, never an answer.
    const paths = (app.swagger() as { paths: Record<string, Record<string, { security?: unknown[] }>> }).paths;
    const ids: Record<string, string> = { federationId: federation.id, participantId: b.id, number: '1', version: 'latest' };
    let checked = 0;
    for (const [template, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (!operation.security) continue;
        const url = template.replace(/\{(\w+)\}/g, (_, name: string) => ids[name]) + (template === '/segment' ? `?federation=${federation.id}` : '');
        for (const token of [a.token, b.token]) {
          const response = await app.inject({ method: method.toUpperCase() as 'GET', url, headers: { ...as(token), 'content-type': 'application/octet-stream' }, payload: Buffer.alloc(16) });
          expect([401, 403], `${method} ${template}`).toContain(response.statusCode);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThanOrEqual(12);
  });
});
