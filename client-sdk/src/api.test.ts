// FussApi against the real aggregation server (Fastify app on in-memory PGlite, listening on
// loopback) and, for what the server does not do on demand (429, binary answers with headers),
// against a small node:http server.

import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { buildApp, openDatabase, type Database } from '@fuss/aggregator';
import { createRng, decodeModel, FEDERATION_DEFAULTS, encodeModel, initCentroids, initHead } from '@fuss/core';
import { FussApi, fillPath } from './api.js';
import { FussApiError } from './errors.js';
import type { RetryEvent } from './transport.js';
import type { FederationCreate, GetModelData } from './generated/types.gen.js';

const ADMIN = 'admin-token-for-api-tests-0123456789';
const SHA = 'c'.repeat(64);
const quick = { retry: { baseDelayMs: 1, maxDelayMs: 5, retryAfterScale: 0.001 } };

describe('FussApi against the aggregation server', () => {
  let db: Database;
  let app: FastifyInstance;
  let baseUrl = '';
  const apis: FussApi[] = [];
  const api = (token: string) => {
    const made = new FussApi({ baseUrl, token, ...quick });
    apis.push(made);
    return made;
  };

  beforeAll(async () => {
    db = await openDatabase({ pgliteDir: 'memory://' });
    await db.migrate();
    app = await buildApp({ db, config: { adminToken: ADMIN } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    baseUrl = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    for (const made of apis) await made.close();
    await app?.close();
    await db?.close();
  });

  function update(seed: number): Uint8Array {
    const rng = createRng(seed);
    return encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1' }, round: 1, version: 0 });
  }

  it('creates a federation and a participant as admin; the participant joins, downloads, uploads and reads the history', async () => {
    const admin = api(ADMIN);
    expect(await admin.health()).toEqual({ status: 'ok' });
    // Only what the server has no default for: the generated FederationCreate leaves defaults optional.
    const body: FederationCreate = { name: 'api-test', backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, codeDim: 4, k: 3, rounds: 2, localSteps: 5, maxParticipants: 1 };
    const federation = await admin.createFederation(body);
    expect(federation).toMatchObject({ name: 'api-test', k: 3, latestModelVersion: 0, status: 'active', strategy: FEDERATION_DEFAULTS.strategy });
    expect((await admin.listFederations()).federations.map((f) => f.id)).toContain(federation.id);
    const enrolled = await admin.addParticipant(federation.id, 'site-a');
    expect(enrolled).toMatchObject({ federationId: federation.id, name: 'site-a' });
    expect(enrolled.token).toMatch(/^fuss_p_/);

    const site = api(enrolled.token);
    expect(await site.me()).toMatchObject({ id: enrolled.id, federationId: federation.id, name: 'site-a', enrolmentIndex: 0 });
    expect((await site.getFederation(federation.id)).id).toBe(federation.id);
    const joined = await site.join(federation.id);
    expect(joined).toMatchObject({ status: 'open', round: 1, modelVersion: 0, alreadySubmitted: false });
    const model = await site.downloadModel(federation.id, 'latest');
    expect(model).toBeInstanceOf(Uint8Array);
    expect(decodeModel(model, { backboneSha256: SHA, k: 3, codeDim: 4, channels: 8 }).version).toBe(0);
    expect(Buffer.from(await site.downloadModel(federation.id, 0)).equals(Buffer.from(model))).toBe(true);

    const bytes = update(1);
    const first = await site.uploadUpdate(federation.id, 1, bytes, { samples: 12, metrics: { loss: 0.5 } });
    expect(first).toEqual({ accepted: true, duplicate: false, round: 1, count: 1, status: 201, bytes: bytes.byteLength });
    // A retry of the same bytes counts once.
    expect(await site.uploadUpdate(federation.id, 1, bytes, { samples: 12 })).toMatchObject({ accepted: false, duplicate: true, status: 200 });
    // The round was full: aggregated (after the answer) into version 1, round 2 open.
    await app.rounds.idle();
    expect(decodeModel(await site.downloadModel(federation.id, 'latest')).version).toBe(1);
    const history = await site.roundHistory(federation.id);
    expect(history.rounds.map((r) => [r.number, r.state, r.updates])).toEqual([
      [1, 'closed', 1],
      [2, 'open', 0],
    ]);
  });

  it('sets class names as admin and reads them as a participant; a participant may not set them', async () => {
    const admin = api(ADMIN);
    const federation = await admin.createFederation({ name: 'api-classes', backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, k: 3, codeDim: 4, rounds: 1, localSteps: 1, maxParticipants: 1 });
    const { token } = await admin.addParticipant(federation.id, 'site-a');
    expect(await admin.setClasses(federation.id, [{ id: 2, name: 'road', colour: '#804080' }, { id: 0, name: 'sky' }])).toEqual([{ id: 0, name: 'sky' }, { id: 2, name: 'road', colour: '#804080' }]);
    const site = api(token);
    expect(await site.getClasses(federation.id)).toEqual([{ id: 0, name: 'sky' }, { id: 2, name: 'road', colour: '#804080' }]);
    await expect(site.setClasses(federation.id, [])).rejects.toMatchObject({ status: 403, operation: 'setClasses' });
    await expect(admin.setClasses(federation.id, [{ id: 3, name: 'beyond K' }])).rejects.toMatchObject({ status: 400, code: 'bad-classes' });
  });

  it('raises typed errors with the operation name and never the token', async () => {
    const admin = api(ADMIN);
    const federation = await admin.createFederation({ name: 'api-errors', backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: 8 }, k: 3, codeDim: 4, rounds: 1, localSteps: 1, maxParticipants: 1 });
    const { token } = await admin.addParticipant(federation.id, 'site-a');
    const duplicate = await admin.addParticipant(federation.id, 'site-a').catch((e: unknown) => e);
    expect(duplicate).toBeInstanceOf(FussApiError);
    expect(duplicate).toMatchObject({ status: 409, operation: 'addParticipant', method: 'POST', attempts: 1 });

    const site = api(token);
    const forbidden = (await site.listFederations().catch((e: unknown) => e)) as FussApiError;
    expect(forbidden).toMatchObject({ status: 403, code: 'forbidden', type: 'https://fuss.dev/problems/forbidden', operation: 'listFederations' });
    expect(forbidden.message).toMatch(/^GET \/v1\/federations: 403 forbidden: /);
    const closed = (await site.uploadUpdate(federation.id, 7, update(2), { samples: 1 }).catch((e: unknown) => e)) as FussApiError;
    expect(closed).toMatchObject({ status: 404, code: 'not-found', operation: 'submitUpdate' });
    expect(closed.message).toBe(`PUT /v1/federations/${federation.id}/rounds/7/update: 404 not-found: ${closed.detail}`);
    const missing = (await admin.getFederation('00000000-0000-4000-8000-000000000000').catch((e: unknown) => e)) as FussApiError;
    expect(missing).toMatchObject({ status: 404, operation: 'getFederation' });
    // No backbone on this server: /segment answers 409.
    const segment = (await site.segment({ federation: federation.id, image: new Uint8Array([137, 80, 78, 71]), contentType: 'image/png' }).catch((e: unknown) => e)) as FussApiError;
    expect(segment).toMatchObject({ status: 409, operation: 'segmentImage' });
    for (const error of [duplicate, forbidden, closed, missing, segment] as Error[]) {
      expect(error.message).not.toContain(token);
      expect(error.message).not.toContain(ADMIN);
    }
    const stranger = api('fuss_p_not-a-real-token-000000000000');
    await expect(stranger.me()).rejects.toMatchObject({ status: 401, operation: 'getParticipantSelf' });
  });
});

describe('FussApi against a stub server', () => {
  const closers: (() => Promise<void>)[] = [];
  afterEach(async () => {
    while (closers.length > 0) await closers.pop()!();
  });

  async function stub(handler: (request: IncomingMessage, response: ServerResponse, n: number, body: Buffer) => void): Promise<string> {
    let n = 0;
    const server = createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => handler(request, response, ++n, Buffer.concat(chunks)));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  it('re-sends a generated-client JSON body after a 429 and reports the retry', async () => {
    const bodies: string[] = [];
    const url = await stub((request, response, n, body) => {
      bodies.push(`${request.method} ${request.url} ${request.headers['content-type']} ${body.toString()}`);
      if (n === 1) return void response.writeHead(429, { 'retry-after': '2', 'content-type': 'application/problem+json' }).end('{"type":"https://fuss.dev/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"later"}');
      response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ id: 'p1', federationId: 'f1', name: 'site-a', token: 'fuss_p_x' }));
    });
    const retries: RetryEvent[] = [];
    const made = new FussApi({ baseUrl: `${url}/`, token: ADMIN, ...quick, onRetry: (event) => retries.push(event) });
    closers.push(() => made.close());
    expect(await made.addParticipant('f1', 'site-a')).toEqual({ id: 'p1', federationId: 'f1', name: 'site-a', token: 'fuss_p_x' });
    expect(bodies).toEqual(Array(2).fill('POST /v1/federations/f1/participants application/json {"name":"site-a"}'));
    expect(retries).toMatchObject([{ operation: 'addParticipant', attempt: 1, status: 429, delayMs: 2 }]);
  });

  it('uploads bytes with samples and metrics in the query, and segments with the model version header', async () => {
    const seen: { url?: string; type?: string; length?: number }[] = [];
    const url = await stub((request, response, _n, body) => {
      seen.push({ url: request.url, type: request.headers['content-type'], length: body.length });
      if (request.method === 'PUT') return void response.writeHead(201, { 'content-type': 'application/json' }).end('{"accepted":true,"duplicate":false,"round":3,"count":2}');
      response.writeHead(200, { 'content-type': 'image/png', 'x-model-version': '4' }).end(Buffer.from([1, 2, 3]));
    });
    const made = new FussApi({ baseUrl: url, token: 'fuss_p_token', ...quick });
    closers.push(() => made.close());
    const result = await made.uploadUpdate('f/1', 3, new Uint8Array(1000), { samples: 40, metrics: { loss: 0.25, entropy: 1.5 } });
    expect(result).toEqual({ accepted: true, duplicate: false, round: 3, count: 2, status: 201, bytes: 1000 });
    const mask = await made.segment({ federation: 'f1', version: 4, format: 'overlay', image: new Uint8Array([9, 9]), contentType: 'image/jpeg' });
    expect(mask).toEqual({ bytes: new Uint8Array([1, 2, 3]), contentType: 'image/png', modelVersion: 4 });
    expect(seen).toEqual([
      { url: `/v1/federations/f%2F1/rounds/3/update?samples=40&metrics=${encodeURIComponent('{"loss":0.25,"entropy":1.5}')}`, type: 'application/octet-stream', length: 1000 },
      { url: '/segment?federation=f1&version=4&format=overlay', type: 'image/jpeg', length: 2 },
    ]);
  });

  it('fills operation paths from the generated URL templates', () => {
    expect(fillPath<GetModelData>('/v1/federations/{federationId}/models/{version}', { federationId: 'a b', version: 'latest' })).toBe('/v1/federations/a%20b/models/latest');
  });
});
