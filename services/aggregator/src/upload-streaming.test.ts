// Uploads read as they arrive (issue #14), over real HTTP on loopback with the file blob store: a bad
// header is refused before the rest of the body is sent, a body cut off or poisoned at its end leaves
// no row, no blob and no temporary file, and the same upload then goes through.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FastifyInstance } from 'fastify';
import { connect, type Socket } from 'node:net';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRng, encodeModel, initCentroids, initHead } from '@fuss/core';
import { buildApp } from './app.js';
import { openDatabase, type Database } from './db/database.js';

const ADMIN = 'admin-token-for-tests-0123456789';
const SHA = 'd'.repeat(64);
// Large enough (1.1 MB) that the body arrives in many pieces.
const SHAPE = { channels: 512, codeDim: 16, k: 4 };

let dir = '';
let db: Database;
let app: FastifyInstance;
let port = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-upload-stream-'));
  db = await openDatabase({ pgliteDir: 'memory://', blobDir: join(dir, 'blobs') });
  await db.migrate();
  app = await buildApp({ db, config: { adminToken: ADMIN }, logger: false });
  await app.listen({ host: '127.0.0.1', port: 0 });
  port = (app.server.address() as { port: number }).port;
});
afterAll(async () => {
  await app?.close();
  await db?.close();
  await rm(dir, { recursive: true, force: true });
});

function update(seed: number, sha = SHA): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead(SHAPE, rng), centroids: initCentroids(SHAPE.k, SHAPE.codeDim, rng), ...SHAPE, backbone: { id: 'tiny', sha256: sha, featureKey: 'key1' }, round: 1, version: 0 }));
}

async function federation(): Promise<{ id: string; token: string }> {
  const base = `http://127.0.0.1:${port}`;
  const headers = { authorization: `Bearer ${ADMIN}`, 'content-type': 'application/json' };
  const created = await (await fetch(`${base}/v1/federations`, { method: 'POST', headers, body: JSON.stringify({ name: `f-${Math.random()}`, backbone: { id: 'tiny', sha256: SHA, featureKey: 'key1', channels: SHAPE.channels }, codeDim: SHAPE.codeDim, k: SHAPE.k, rounds: 1, localSteps: 1, maxParticipants: 2, strategy: 'fedavg' }) })).json() as { id: string };
  const { token } = await (await fetch(`${base}/v1/federations/${created.id}/participants`, { method: 'POST', headers, body: JSON.stringify({ name: 'site' }) })).json() as { token: string };
  return { id: created.id, token };
}

/** Starts an upload on a raw socket: headers for `length` bytes, then `first` of the body. Collects the answer. */
function startUpload(path: string, token: string, length: number, first: Buffer): { socket: Socket; answer: Promise<{ status: number; text: string; atMs: number }> } {
  const socket = connect(port, '127.0.0.1');
  const started = performance.now();
  socket.write(`PUT ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${length}\r\n\r\n`);
  socket.write(first);
  const answer = new Promise<{ status: number; text: string; atMs: number }>((resolve) => {
    let text = '';
    socket.on('data', (chunk) => {
      text += chunk.toString('latin1');
      if (/\r\n\r\n[\s\S]*\}/.test(text)) resolve({ status: Number(text.slice(9, 12)), text, atMs: performance.now() - started });
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status: Number(text.slice(9, 12)) || 0, text, atMs: performance.now() - started }));
  });
  return { socket, answer };
}

async function blobFiles(): Promise<{ blobs: number; temporary: number }> {
  const folders = (await readdir(join(dir, 'blobs'))).filter((name) => /^[0-9a-f]{2}$/.test(name));
  let blobs = 0;
  for (const folder of folders) blobs += (await readdir(join(dir, 'blobs', folder))).length;
  return { blobs, temporary: (await readdir(join(dir, 'blobs', 'tmp'))).length };
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

describe('uploads read as they arrive', () => {
  it('refuse an update of another backbone from its header, before the rest of the body is sent', async () => {
    const f = await federation();
    const bytes = update(1, 'e'.repeat(64));
    const { socket, answer } = startUpload(`/v1/federations/${f.id}/rounds/1/update?samples=3`, f.token, bytes.length, bytes.subarray(0, 16 * 1024));
    const got = await answer;
    socket.destroy();
    expect(got.status).toBe(409);
    expect(got.text).toMatch(/trained on backbone/);
    // Answered long before the body-idle timeout (15 s), with 1.1 MB of the body never sent.
    expect(got.atMs).toBeLessThan(3000);
    await settle();
    expect(await db.prisma.update.count()).toBe(0);
    expect((await blobFiles()).temporary).toBe(0);
  });

  it('keep nothing of a body cut off halfway, and take the whole upload afterwards', async () => {
    const f = await federation();
    const before = await blobFiles();
    const bytes = update(2);
    const { socket, answer } = startUpload(`/v1/federations/${f.id}/rounds/1/update?samples=3`, f.token, bytes.length, bytes.subarray(0, bytes.length >> 1));
    await new Promise((resolve) => setTimeout(resolve, 300));
    socket.destroy();
    await answer;
    await settle();
    expect(await db.prisma.update.count({ where: { round: { federationId: f.id } } })).toBe(0);
    expect(await blobFiles()).toEqual(before);
    const whole = await fetch(`http://127.0.0.1:${port}/v1/federations/${f.id}/rounds/1/update?samples=3`, { method: 'PUT', headers: { authorization: `Bearer ${f.token}`, 'content-type': 'application/octet-stream' }, body: bytes });
    expect(whole.status).toBe(201);
    expect(await blobFiles()).toEqual({ blobs: before.blobs + 1, temporary: 0 });
  });

  it('refuse a non-finite last value when it arrives, leaving no blob', async () => {
    const f = await federation();
    const before = await blobFiles();
    const bytes = update(3);
    bytes.writeFloatLE(Number.NaN, bytes.length - 4);
    const answer = await fetch(`http://127.0.0.1:${port}/v1/federations/${f.id}/rounds/1/update?samples=3`, { method: 'PUT', headers: { authorization: `Bearer ${f.token}`, 'content-type': 'application/octet-stream' }, body: bytes });
    expect(answer.status).toBe(400);
    expect(((await answer.json()) as { detail: string }).detail).toMatch(/non-finite/);
    await settle();
    expect(await blobFiles()).toEqual(before);
    expect(await db.prisma.update.count({ where: { round: { federationId: f.id } } })).toBe(0);
  });

  it('count a retry of the same bytes once and refuse different bytes, keeping one blob', async () => {
    const f = await federation();
    const before = await blobFiles();
    const put = (body: Buffer) => fetch(`http://127.0.0.1:${port}/v1/federations/${f.id}/rounds/1/update?samples=3`, { method: 'PUT', headers: { authorization: `Bearer ${f.token}`, 'content-type': 'application/octet-stream' }, body });
    expect((await put(update(4))).status).toBe(201);
    const retry = await put(update(4));
    expect(retry.status).toBe(200);
    expect(await retry.json()).toMatchObject({ accepted: false, duplicate: true, count: 1 });
    const other = await put(update(5));
    expect(other.status).toBe(409);
    expect(await db.prisma.update.count({ where: { round: { federationId: f.id } } })).toBe(1);
    const after = await blobFiles();
    expect(after.temporary).toBe(0);
    // The refused bytes may stay as an unnamed blob until garbage collection; the accepted ones are there.
    expect(after.blobs - before.blobs).toBeGreaterThanOrEqual(1);
    const row = await db.prisma.update.findFirstOrThrow({ where: { round: { federationId: f.id } } });
    expect(await db.blobs.has(row.sha256)).toBe(true);
  });

  it('refuse a body without Content-Length (411) before reading it', async () => {
    const f = await federation();
    const socket = connect(port, '127.0.0.1');
    const text = await new Promise<string>((resolve) => {
      let got = '';
      socket.on('data', (chunk) => {
        got += chunk.toString('latin1');
        if (/\r\n\r\n[\s\S]*\}/.test(got)) resolve(got);
      });
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(got));
      socket.write(`PUT /v1/federations/${f.id}/rounds/1/update?samples=3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${f.token}\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n4000\r\n`);
      socket.write(Buffer.alloc(0x4000));
    });
    socket.destroy();
    expect(Number(text.slice(9, 12))).toBe(411);
    expect(text).toMatch(/Content-Length/);
    expect(await db.prisma.update.count({ where: { round: { federationId: f.id } } })).toBe(0);
  });

  it('answer 503 with Retry-After while the bytes in flight would pass the budget, and take the upload after', async () => {
    const f = await federation();
    const bytes = update(6);
    // A budget of one update and a half: a stalled upload holds it, a second must wait.
    const small = await buildApp({ db, config: { adminToken: ADMIN, limits: { uploadBytesInFlight: Math.floor(bytes.length * 1.5) } }, logger: false });
    await small.listen({ host: '127.0.0.1', port: 0 });
    const smallPort = (small.server.address() as { port: number }).port;
    try {
      const other = await federation();
      const stalled = connect(smallPort, '127.0.0.1');
      stalled.on('error', () => undefined);
      stalled.write(`PUT /v1/federations/${other.id}/rounds/1/update?samples=3 HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${other.token}\r\nContent-Type: application/octet-stream\r\nContent-Length: ${bytes.length}\r\n\r\n`);
      stalled.write(bytes.subarray(0, 1024));
      await settle();
      const url = `http://127.0.0.1:${smallPort}/v1/federations/${f.id}/rounds/1/update?samples=3`;
      const headers = { authorization: `Bearer ${f.token}`, 'content-type': 'application/octet-stream' };
      const refused = await fetch(url, { method: 'PUT', headers, body: bytes });
      expect(refused.status).toBe(503);
      expect(refused.headers.get('retry-after')).toBe('5');
      stalled.destroy();
      await settle();
      expect((await fetch(url, { method: 'PUT', headers, body: bytes })).status).toBe(201);
    } finally {
      await small.close();
    }
  });
});
