// The real server process (`fuss server`) over loopback HTTP: starts on the embedded database,
// answers, shuts down on SIGTERM, and keeps its data across a restart. Needs the build (npm test
// builds before running vitest).

import { afterAll, describe, expect, it } from 'vitest';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ADMIN, BIN, startServer, stop } from './server-helper.js';
const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

describe('fuss server process', () => {
  it('serves over HTTP, never logs tokens, and keeps federations across a restart', async () => {
    const dbDir = await mkdtemp(join(tmpdir(), 'fuss-e2e-db-'));
    dirs.push(dbDir);
    const first = await startServer({}, ['--db-dir', dbDir]);
    expect(await (await fetch(`${first.url}/readyz`)).json()).toEqual({ status: 'ready', database: 'pglite' });
    const created = await fetch(`${first.url}/v1/federations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'e2e', backbone: { id: 'b', sha256: 'c'.repeat(64), featureKey: 'k', channels: 8 }, k: 3, rounds: 1, localSteps: 1, maxParticipants: 2 }),
    });
    expect(created.status).toBe(201);
    const federation = (await created.json()) as { id: string };
    const unauthorised = await fetch(`${first.url}/v1/federations`, { headers: { authorization: 'Bearer wrong-token-value' } });
    expect(unauthorised.status).toBe(401);
    expect(unauthorised.headers.get('content-type')).toMatch(/problem\+json/);
    expect(await stop(first.child)).toBe(0);
    expect(first.output()).not.toContain(ADMIN);
    expect(first.output()).not.toContain('wrong-token-value');

    const second = await startServer({}, ['--db-dir', dbDir]);
    const list = (await (await fetch(`${second.url}/v1/federations`, { headers: { authorization: `Bearer ${ADMIN}` } })).json()) as { federations: { id: string }[] };
    expect(list.federations.map((f: { id: string }) => f.id)).toEqual([federation.id]);
    expect(second.output()).not.toMatch(/applied migrations/);
    expect(await stop(second.child)).toBe(0);
  });

  it('refuses to listen on a public address without an admin token', async () => {
    const child = spawn(process.execPath, [BIN, 'server', '--host', '0.0.0.0', '--port', '0'], { env: { ...process.env, FUSS_ADMIN_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const code = await new Promise<number | null>((resolve) => child.once('exit', resolve));
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/without FUSS_ADMIN_TOKEN/);
  });
});
