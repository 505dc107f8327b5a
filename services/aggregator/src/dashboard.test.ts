// The dashboard's static files at / (inject, on a folder made here, so the test needs no build): served
// to anyone under a strict Content-Security-Policy, nothing outside the folder, and a clear 503 when
// the dashboard was not built. (test/browser/dashboard.test.ts drives the real build in a browser.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { buildApp } from './app.js';
import { DASHBOARD_CSP } from './routes/dashboard.js';
import { freshPglite, type TestDatabase } from './test-support/databases.js';

let dir = '';
let test: TestDatabase;
const apps: FastifyInstance[] = [];

async function app(options: { adminToken?: string; dashboardDir?: string } = {}) {
  const built = await buildApp({ db: test.db, config: { adminToken: 'adminToken' in options ? options.adminToken : 'admin-token-for-tests-0123456789' }, dashboardDir: options.dashboardDir ?? dir });
  apps.push(built);
  return built;
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-dashboard-'));
  await writeFile(join(dir, 'index.html'), '<!doctype html><title>FUSS dashboard</title><script type="module" src="app.js"></script>');
  await writeFile(join(dir, 'app.js'), 'console.log(1);');
  test = await freshPglite();
  await test.db.migrate();
});
afterAll(async () => {
  for (const a of apps) await a.close();
  await test.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('the dashboard at /', () => {
  it('serves index.html and its script to anyone, with the CSP and no-sniff headers', async () => {
    const server = await app();
    for (const [url, type] of [['/', /text\/html/], ['/index.html', /text\/html/], ['/app.js', /javascript/]] as const) {
      const r = await server.inject({ method: 'GET', url });
      expect(r.statusCode, url).toBe(200);
      expect(r.headers['content-type']).toMatch(type);
      expect(r.headers['content-security-policy']).toBe(DASHBOARD_CSP);
      expect(r.headers['x-content-type-options']).toBe('nosniff');
      expect(r.headers['referrer-policy']).toBe('no-referrer');
      expect(r.headers['cache-control']).toBe('no-cache');
    }
    expect(DASHBOARD_CSP).toMatch(/script-src 'self';/);
    expect(DASHBOARD_CSP).not.toMatch(/unsafe/);
    expect(DASHBOARD_CSP).toMatch(/frame-ancestors 'none'/);
  });

  it('serves nothing else: unknown paths, traversal and other methods get the API problem answers', async () => {
    const server = await app();
    for (const url of ['/nope.js', '/../package.json', '/%2e%2e/package.json', '/..%2fpackage.json', '/app.js/..%2f..%2fetc/passwd']) {
      const r = await server.inject({ method: 'GET', url });
      expect([400, 404], url).toContain(r.statusCode);
      expect(r.headers['content-type'], url).toMatch(/problem\+json/);
    }
    expect((await server.inject({ method: 'POST', url: '/', payload: {} })).statusCode).toBe(404);
    // The API is still the API.
    expect((await server.inject({ method: 'GET', url: '/v1/federations' })).statusCode).toBe(401);
  });

  it('answers 503 with the way out when the dashboard was not built', async () => {
    const server = await app({ dashboardDir: join(dir, 'missing') });
    const r = await server.inject({ method: 'GET', url: '/' });
    expect(r.statusCode).toBe(503);
    expect(r.json().detail).toMatch(/npm run build/);
  });

  it('on a server without admin token, answers only requests addressed to a loopback name', async () => {
    const server = await app({ adminToken: undefined });
    expect((await server.inject({ method: 'GET', url: '/', headers: { host: '127.0.0.1:8080' } })).statusCode).toBe(200);
    expect((await server.inject({ method: 'GET', url: '/', headers: { host: 'evil.example' } })).statusCode).toBe(403);
    expect((await server.inject({ method: 'GET', url: '/app.js', headers: { host: 'localhost:8080', origin: 'http://evil.example' } })).statusCode).toBe(403);
  });
});
