// The transport against real loopback HTTP servers: retries on 5xx, 429 (Retry-After), resets and
// timeouts with the body re-sent intact; typed errors for 4xx, sent once; the token never in a
// message; giving up after the last attempt; cancelling.

import { afterEach, describe, expect, it } from 'vitest';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { FussApiError, FussNetworkError } from './errors.js';
import { parseRetryAfter, Transport, type RetryEvent, type TransportOptions } from './transport.js';

const TOKEN = 'fuss_p_secret-token-0123456789abcdef';

interface TestServer {
  url: string;
  /** Requests received so far. */
  count: number;
  close(): Promise<void>;
}

type Handler = (request: IncomingMessage, response: ServerResponse, n: number, body: Buffer) => void;

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A loopback server; the handler sees each request (numbered from 1) once its body has arrived, unless it sets `early`. */
async function serve(handler: Handler, options: { early?: (request: IncomingMessage, n: number) => boolean } = {}): Promise<TestServer> {
  const state = { count: 0 };
  const server = createServer((request, response) => {
    const n = ++state.count;
    if (options.early?.(request, n)) return;
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => handler(request, response, n, Buffer.concat(chunks)));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const close = async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  const result: TestServer = {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get count() {
      return state.count;
    },
    close,
  };
  cleanups.push(close);
  return result;
}

function transport(url: string, options: Partial<TransportOptions> = {}): { transport: Transport; retries: RetryEvent[] } {
  const retries: RetryEvent[] = [];
  // Tiny backoff and Retry-After waits keep the tests quick; the tests that time waits set their own.
  const t = new Transport({ baseUrl: url, token: TOKEN, onRetry: (event) => retries.push(event), ...options, retry: { baseDelayMs: 1, maxDelayMs: 5, retryAfterScale: 0.001, ...options.retry } });
  cleanups.push(() => t.close());
  return { transport: t, retries };
}

function problem(response: ServerResponse, status: number, type: string, detail: string) {
  response.writeHead(status, { 'content-type': 'application/problem+json' });
  response.end(JSON.stringify({ type: `https://fuss.dev/problems/${type}`, title: 'Problem', status, detail, instance: 'req-7' }));
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('retries', () => {
  it('retries a 503 and succeeds, sending the token each time', async () => {
    const auth: (string | undefined)[] = [];
    const server = await serve((request, response, n) => {
      auth.push(request.headers.authorization);
      if (n === 1) return problem(response, 503, 'unavailable', 'database restarting');
      response.writeHead(200, { 'content-type': 'application/json' }).end('{"ok":true}');
    });
    const { transport: t, retries } = transport(server.url);
    const { data, status } = await t.json<{ ok: boolean }>({ operation: 'getThing', method: 'GET', path: '/thing' });
    expect([data, status, server.count]).toEqual([{ ok: true }, 200, 2]);
    expect(auth).toEqual([`Bearer ${TOKEN}`, `Bearer ${TOKEN}`]);
    expect(retries).toHaveLength(1);
    expect(retries[0]).toMatchObject({ operation: 'getThing', method: 'GET', path: '/thing', attempt: 1, maxAttempts: 5, status: 503 });
    expect(retries[0].reason).toMatch(/^503 /);
  });

  it('honours Retry-After on a 429 (seconds and HTTP date)', async () => {
    const server = await serve((_request, response, n) => {
      if (n === 1) return void response.writeHead(429, { 'retry-after': '1', 'content-type': 'application/problem+json' }).end('{"type":"https://fuss.dev/problems/rate-limited","title":"Too Many Requests","status":429,"detail":"slow down"}');
      response.writeHead(200).end('done');
    });
    // Retry-After scaled by 0.25 keeps the test short: 1 s becomes 250 ms, far above the 1-5 ms backoff.
    const { transport: t, retries } = transport(server.url, { retry: { retryAfterScale: 0.25 } });
    const started = performance.now();
    const response = await t.request({ operation: 'upload', method: 'PUT', path: '/u', body: new Uint8Array([1, 2, 3]) });
    const elapsed = performance.now() - started;
    expect(new TextDecoder().decode(response.body)).toBe('done');
    expect(response.attempts).toBe(2);
    expect(retries.map((r) => [r.delayMs, r.status])).toEqual([[250, 429]]);
    expect(retries[0].reason).toContain('Retry-After 1 s');
    expect(elapsed).toBeGreaterThanOrEqual(240);

    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:03 GMT', now)).toBe(3000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });

  it('caps the Retry-After wait', async () => {
    const server = await serve((_request, response, n) => {
      if (n === 1) return void response.writeHead(503, { 'retry-after': '3600' }).end();
      response.writeHead(204).end();
    });
    const { transport: t, retries } = transport(server.url, { retry: { retryAfterScale: 1, maxRetryAfterMs: 20 } });
    expect((await t.request({ operation: 'x', method: 'GET', path: '/' })).status).toBe(204);
    expect(retries[0].delayMs).toBe(20);
  });

  it('retries a connection reset mid-upload and re-sends the body intact', async () => {
    const body = new Uint8Array(3 * 1024 * 1024);
    for (let i = 0; i < body.length; i++) body[i] = (i * 7919) % 251;
    const server = await serve(
      (_request, response, _n, received) => response.writeHead(201, { 'content-type': 'application/json' }).end(JSON.stringify({ sha256: sha256(received), length: received.length })),
      {
        // The first attempt: read the first chunk of the body, then cut the connection.
        early: (request, n) => {
          if (n !== 1) return false;
          request.once('data', () => request.socket.destroy());
          return true;
        },
      },
    );
    const { transport: t, retries } = transport(server.url);
    const { data, status } = await t.json<{ sha256: string; length: number }>({ operation: 'submitUpdate', method: 'PUT', path: '/v1/federations/f/rounds/1/update', query: { samples: 3 }, body, headers: { 'content-type': 'application/octet-stream' } });
    expect(status).toBe(201);
    expect(data).toEqual({ sha256: sha256(body), length: body.length });
    expect(server.count).toBe(2);
    expect(retries).toHaveLength(1);
    expect(retries[0].code).toMatch(/^(ECONNRESET|EPIPE|UND_ERR_SOCKET)$/);
  });

  it('re-sends a Buffer view exactly (its own bytes, not its backing pool)', async () => {
    const server = await serve((_request, response, n, received) => {
      if (n === 1) return void response.writeHead(502).end('bad gateway');
      response.writeHead(200).end(received.toString('hex'));
    });
    const { transport: t } = transport(server.url);
    const pool = Buffer.from([9, 9, 1, 2, 3, 9, 9]);
    const view = pool.subarray(2, 5);
    const response = await t.request({ operation: 'x', method: 'PUT', path: '/', body: view });
    expect(new TextDecoder().decode(response.body)).toBe('010203');
  });

  it('retries a connection lost mid-download', async () => {
    const payload = Buffer.alloc(256 * 1024, 7);
    const server = await serve((_request, response, n) => {
      response.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(payload.length) });
      if (n === 1) {
        response.write(payload.subarray(0, 1000));
        setTimeout(() => response.socket?.destroy(), 20);
        return;
      }
      response.end(payload);
    });
    const { transport: t, retries } = transport(server.url);
    const response = await t.request({ operation: 'getModel', method: 'GET', path: '/model' });
    expect(Buffer.from(response.body).equals(payload)).toBe(true);
    expect(retries).toHaveLength(1);
  });

  it('retries when the answer headers time out', async () => {
    const server = await serve((_request, response, n) => {
      if (n === 1) return void setTimeout(() => response.writeHead(200).end('late'), 1000);
      response.writeHead(200).end('on time');
    });
    const { transport: t, retries } = transport(server.url, { timeouts: { headersMs: 150 } });
    const response = await t.request({ operation: 'x', method: 'GET', path: '/' });
    expect(new TextDecoder().decode(response.body)).toBe('on time');
    expect(retries[0].code).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('gives up after the last attempt with a clear error', async () => {
    const server = await serve((_request, response) => problem(response, 503, 'unavailable', 'database down'));
    const { transport: t, retries } = transport(server.url, { retry: { maxAttempts: 3 } });
    const error = await t.request({ operation: 'listRounds', method: 'GET', path: '/v1/federations/f/rounds' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FussApiError);
    expect(error).toMatchObject({ status: 503, code: 'unavailable', attempts: 3, operation: 'listRounds' });
    expect((error as Error).message).toBe('GET /v1/federations/f/rounds: 503 unavailable: database down (gave up after 3 attempts)');
    expect(server.count).toBe(3);
    expect(retries.map((r) => r.attempt)).toEqual([1, 2]);
  });

  it('gives up on a refused connection with a FussNetworkError that keeps its cause', async () => {
    const server = await serve(() => undefined);
    const url = server.url;
    await server.close();
    const { transport: t, retries } = transport(url, { retry: { maxAttempts: 3 } });
    const error = await t.request({ operation: 'health', method: 'GET', path: '/healthz' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FussNetworkError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', attempts: 3, operation: 'health' });
    expect((error as Error).message).toMatch(/^GET \/healthz: network error: ECONNREFUSED: .*\(gave up after 3 attempts\)$/);
    expect((error as Error).cause).toBeDefined();
    expect((error as Error).message).not.toContain(TOKEN);
    expect(retries).toHaveLength(2);
  });

  it('does not repeat a POST that may have reached the server, but does on 429 or a refused connection', async () => {
    const server = await serve((_request, response, n) => {
      if (n === 1) return problem(response, 503, 'unavailable', 'busy');
      response.writeHead(201).end('{}');
    });
    const { transport: t } = transport(server.url);
    await expect(t.request({ operation: 'createFederation', method: 'POST', path: '/v1/federations', body: '{}' })).rejects.toMatchObject({ status: 503, attempts: 1 });
    expect(server.count).toBe(1);
    const server2 = await serve((_request, response, n) => {
      if (n === 1) return problem(response, 429, 'rate-limited', 'busy');
      response.writeHead(201).end('{}');
    });
    const { transport: t2 } = transport(server2.url);
    expect((await t2.request({ operation: 'createFederation', method: 'POST', path: '/v1/federations', body: '{}' })).status).toBe(201);
    expect(server2.count).toBe(2);

    const reset = await serve(() => undefined, { early: (request) => (request.socket.destroy(), true) });
    const { transport: t3 } = transport(reset.url);
    const error = await t3.request({ operation: 'addParticipant', method: 'POST', path: '/p', body: '{"name":"a"}' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FussNetworkError);
    expect((error as Error).message).toContain('not retried: the request may have reached the server');
    expect(reset.count).toBe(1);
  });
});

describe('errors', () => {
  it.each([
    [400, 'validation', 'invalid request: body/k must be >= 1'],
    [404, 'not-found', 'federation 123 does not exist'],
    [409, 'round-not-open', 'round 3 is closed; updates are accepted only while it is open'],
  ])('raises FussApiError for %i without retrying', async (status, type, detail) => {
    const server = await serve((_request, response) => problem(response, status, type, detail));
    const { transport: t, retries } = transport(server.url);
    const error = await t.request({ operation: 'submitUpdate', method: 'PUT', path: '/v1/federations/f1/rounds/3/update', query: { samples: 1 }, body: new Uint8Array(4) }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FussApiError);
    expect(error).toMatchObject({ status, type: `https://fuss.dev/problems/${type}`, code: type, detail, title: 'Problem', instance: 'req-7', operation: 'submitUpdate', method: 'PUT', path: '/v1/federations/f1/rounds/3/update', attempts: 1 });
    expect((error as Error).message).toBe(`PUT /v1/federations/f1/rounds/3/update: ${status} ${type}: ${detail}`);
    expect(server.count).toBe(1);
    expect(retries).toEqual([]);
  });

  it('describes an answer that is not a problem document', async () => {
    const server = await serve((_request, response) => response.writeHead(413, { 'content-type': 'text/html' }).end('<html><body>Request Entity Too Large</body></html>'));
    const { transport: t } = transport(server.url);
    const error = (await t.request({ operation: 'x', method: 'PUT', path: '/big', body: 'x' }).catch((e: unknown) => e)) as FussApiError;
    expect(error.message).toBe('PUT /big: 413 payload-too-large: <html><body>Request Entity Too Large</body></html>');
    expect(error.type).toBe('');
  });

  it('never puts the token in a message, even when the server echoes it', async () => {
    const server = await serve((request, response) => problem(response, 401, 'unauthorized', `token ${request.headers.authorization} is not valid`));
    const { transport: t } = transport(server.url);
    const error = (await t.request({ operation: 'me', method: 'GET', path: '/v1/participants/me' }).catch((e: unknown) => e)) as FussApiError;
    expect(error).toBeInstanceOf(FussApiError);
    expect(error.message).not.toContain(TOKEN);
    expect(error.detail).not.toContain(TOKEN);
    expect(String(error.stack)).not.toContain(TOKEN);
    expect(error.message).toBe('GET /v1/participants/me: 401 unauthorized: token Bearer [token] is not valid');
  });
});

describe('cancelling', () => {
  it('aborts a request in flight', async () => {
    const server = await serve(() => undefined); // never answers
    const { transport: t } = transport(server.url);
    const controller = new AbortController();
    const started = performance.now();
    setTimeout(() => controller.abort(), 100);
    await expect(t.request({ operation: 'x', method: 'GET', path: '/', signal: controller.signal })).rejects.toMatchObject({ name: 'AbortError' });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('aborts while waiting to retry, through the transport-wide signal', async () => {
    const server = await serve((_request, response) => void response.writeHead(503, { 'retry-after': '60' }).end());
    const controller = new AbortController();
    const retries: RetryEvent[] = [];
    const t = new Transport({ baseUrl: server.url, token: TOKEN, signal: controller.signal, onRetry: (event) => (retries.push(event), setTimeout(() => controller.abort(), 50)) });
    cleanups.push(() => t.close());
    const started = performance.now();
    await expect(t.request({ operation: 'x', method: 'GET', path: '/' })).rejects.toMatchObject({ name: 'AbortError' });
    expect(retries.map((r) => r.delayMs)).toEqual([60_000]);
    expect(performance.now() - started).toBeLessThan(2000);
    expect(server.count).toBe(1);
  });
});
