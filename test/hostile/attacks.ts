// The hostile requests of issue #10, one entry per row of its table (and a few neighbours), as data:
// each attack runs against a prepared target and reports what the server did. The hostile test suite
// asserts on these reports; bench/hostile prints them for this server and for an older build.

import sharp from 'sharp';
import { createRng, decodeSafetensors, encodeModel, encodeSafetensors, initCentroids, initHead } from '@fuss/core';
import { rawRequest, type RawResult } from './harness.js';

export interface Target {
  url: string;
  adminToken: string;
  /** A federation of the server's segmentation backbone, with a participant. */
  federationId: string;
  participantToken: string;
  backbone: { id: string; sha256: string; featureKey: string; channels: number };
}

export interface Observation {
  /** HTTP status, or undefined when the connection closed without one. */
  status?: number;
  /** Milliseconds until the answer (or the close when there was none). */
  ms: number;
  /** Whether the server closed the connection within the wait. */
  closed?: boolean;
  /** Bytes of a large body the client got to send before the server answered. */
  bodyBytesSent?: number;
  /** Characters of the problem detail, when there was one. */
  detailChars?: number;
  note?: string;
}

export interface AttackOptions {
  /** Longest wait for an answer or a close (a server without timeouts may never close). */
  patienceMs?: number;
}

export interface Attack {
  name: string;
  /** The row of the table this reproduces. */
  row: string;
  /** Builds what the attack sends (before the server is watched: building it is not the server's work). */
  prepare?(target: Target): Promise<Buffer>;
  run(target: Target, options?: AttackOptions, prepared?: Buffer): Promise<Observation>;
}

const wait = (options: AttackOptions | undefined, ms: number) => Math.min(ms, options?.patienceMs ?? ms);

const MiB = 1024 * 1024;

function head(method: string, path: string, headers: Record<string, string | number>): string {
  return [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...Object.entries(headers).map(([k, v]) => `${k}: ${v}`)].join('\r\n');
}

function observe(result: RawResult): Observation {
  const body = result.response.split('\r\n\r\n').slice(1).join('\r\n\r\n');
  let detailChars: number | undefined;
  const detail = /"detail":"((?:[^"\\]|\\.)*)"/.exec(body);
  if (detail) detailChars = detail[1].length;
  return { status: result.status, ms: Math.round(result.answeredMs ?? result.closedMs ?? Number.NaN), closed: result.closedMs !== undefined, bodyBytesSent: result.bodyBytesSent, detailChars };
}

async function timed(work: () => Promise<Response>): Promise<Observation> {
  const started = performance.now();
  const response = await work();
  const text = await response.text();
  let detailChars: number | undefined;
  try {
    detailChars = (JSON.parse(text) as { detail?: string }).detail?.length;
  } catch {
    detailChars = undefined;
  }
  return { status: response.status, ms: Math.round(performance.now() - started), detailChars };
}

/** A solid-colour PNG of the given size: a few kilobytes that decode to width x height pixels. */
export async function pngBomb(width: number, height: number): Promise<Buffer> {
  return sharp({ create: { width, height, channels: 3, background: { r: 90, g: 140, b: 200 } } }).png({ compressionLevel: 9 }).toBuffer();
}

/** An update of a federation of `shape` for `round` (trained from version round - 1, as its metadata says). */
export function modelBytes(target: Pick<Target, 'backbone'>, seed: number, shape = { channels: target.backbone.channels, codeDim: 4, k: 3 }, round = 1): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({
    head: initHead({ channels: shape.channels, codeDim: shape.codeDim }, rng),
    centroids: initCentroids(shape.k, shape.codeDim, rng),
    channels: shape.channels,
    codeDim: shape.codeDim,
    k: shape.k,
    backbone: { id: target.backbone.id, sha256: target.backbone.sha256, featureKey: target.backbone.featureKey },
    round,
    version: round - 1,
  }));
}

export const ATTACKS: Attack[] = [
  {
    name: 'json-50mb-no-token',
    row: 'a 50 MB JSON body to POST /v1/federations, no token',
    run: async (t, o) => observe(await rawRequest(t.url, {
      head: head('POST', '/v1/federations', { 'content-type': 'application/json', 'content-length': 50 * MiB }),
      body: Buffer.alloc(50 * MiB, 0x20),
      waitMs: wait(o, 30_000),
    })),
  },
  {
    name: 'json-50mb-admin',
    row: 'a 50 MB JSON body to POST /v1/federations, admin token',
    run: async (t, o) => observe(await rawRequest(t.url, {
      head: head('POST', '/v1/federations', { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json', 'content-length': 50 * MiB }),
      body: Buffer.alloc(50 * MiB, 0x20),
      waitMs: wait(o, 30_000),
    })),
  },
  {
    name: 'stalled-uploads-no-token-x20',
    row: '20 connections that start a 63 MB upload without a token and stall',
    run: async (t, o) => {
      const waitMs = wait(o, 20_000);
      const results = await Promise.all(Array.from({ length: 20 }, () => rawRequest(t.url, {
        head: head('PUT', `/v1/federations/${t.federationId}/rounds/1/update?samples=5`, { 'content-type': 'application/octet-stream', 'content-length': 63 * MiB }),
        body: Buffer.alloc(MiB),
        stallAfterBytes: 64 * 1024,
        waitMs,
      })));
      const statuses = [...new Set(results.map((r) => r.status))];
      return {
        status: statuses.length === 1 ? statuses[0] : undefined,
        ms: Math.round(Math.max(...results.map((r) => r.closedMs ?? waitMs))),
        closed: results.every((r) => r.closedMs !== undefined),
        note: `statuses ${statuses.join(',')}; ${results.filter((r) => r.closedMs === undefined).length} of 20 still open after ${waitMs} ms`,
      };
    },
  },
  {
    name: 'stalled-body-with-token',
    row: 'headers promising 1000 bytes, 3 sent, then silence (admin token)',
    run: async (t, o) => observe(await rawRequest(t.url, {
      head: head('POST', '/v1/federations', { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json', 'content-length': 1000 }),
      body: Buffer.from('{"n'),
      waitMs: wait(o, 120_000),
    })),
  },
  {
    name: 'stalled-headers',
    row: 'request headers that never end',
    run: async (t, o) => observe(await rawRequest(t.url, { rawOnly: 'GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ', waitMs: wait(o, 120_000) })),
  },
  {
    name: 'png-3000x3000',
    row: 'a 26 KB PNG declaring 3000x3000 pixels to /segment (participant token)',
    prepare: () => pngBomb(3000, 3000),
    run: async (t, _o, png = Buffer.alloc(0)) => {
      const observation = await timed(() => fetch(`${t.url}/segment?federation=${t.federationId}`, { method: 'POST', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'image/png' }, body: png }));
      return { ...observation, note: `${Math.round(png.length / 1024)} KB body` };
    },
  },
  {
    name: 'png-6000x5000',
    row: 'a PNG declaring 30 MP, above the pixel limit',
    prepare: () => pngBomb(6000, 5000),
    run: async (t, _o, body) => timed(() => fetch(`${t.url}/segment?federation=${t.federationId}`, { method: 'POST', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'image/png' }, body })),
  },
  ...(['svg', 'tiff', 'gif'] as const).map((format): Attack => ({
    name: `${format}-as-png`,
    row: `an ${format.toUpperCase()} body labelled image/png`,
    run: async (t) => {
      const body = format === 'svg'
        ? Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="64" height="64"><rect width="64" height="64" fill="red"/></svg>')
        : await sharp({ create: { width: 64, height: 48, channels: 3, background: 'red' } })[format]().toBuffer();
      return timed(() => fetch(`${t.url}/segment?federation=${t.federationId}`, { method: 'POST', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'image/png' }, body }));
    },
  })),
  {
    name: 'round-2^40',
    row: 'round number 2^40',
    run: (t) => timed(() => fetch(`${t.url}/v1/federations/${t.federationId}/rounds/${2 ** 40}/update?samples=5`, { method: 'PUT', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'application/octet-stream' }, body: modelBytes(t, 1) })),
  },
  {
    name: 'multipart-no-boundary',
    row: 'a multipart body without a boundary',
    run: (t) => timed(() => fetch(`${t.url}/segment?federation=${t.federationId}`, { method: 'POST', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'multipart/form-data' }, body: 'hello' })),
  },
  {
    name: 'multipart-cut-boundary',
    row: 'a multipart body cut inside its boundary',
    run: (t) => timed(() => fetch(`${t.url}/segment?federation=${t.federationId}`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'multipart/form-data; boundary=XyZ' },
      body: '--XyZ\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n\x89PNG\r\n--X',
    })),
  },
  {
    name: 'nul-in-name',
    row: 'a NUL character in a name',
    run: (t) => timed(() => fetch(`${t.url}/v1/federations/${t.federationId}/participants`, { method: 'POST', headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'site\u0000a' }) })),
  },
  {
    name: 'nul-in-metrics',
    row: 'a NUL character in metrics',
    run: (t) => timed(() => fetch(`${t.url}/v1/federations/${t.federationId}/rounds/1/update?samples=5&metrics=${encodeURIComponent(JSON.stringify({ note: 'a\u0000b' }))}`, { method: 'PUT', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'application/octet-stream' }, body: modelBytes(t, 2) })),
  },
  {
    name: 'update-50000-tensors',
    row: 'an update with 50 000 empty tensors beside its real ones',
    // A valid update plus 50 000 empty extra tensors: a parser that lists the extras in its message
    // answers with megabytes.
    prepare: async (t) => {
      const { tensors, metadata } = decodeSafetensors(modelBytes(t, 3));
      for (let i = 0; i < 50_000; i++) tensors[`t${i}`] = { dims: [0], data: new Float32Array(0) };
      return Buffer.from(encodeSafetensors(tensors, metadata));
    },
    run: (t, _o, body) => timed(() => fetch(`${t.url}/v1/federations/${t.federationId}/rounds/1/update?samples=5`, { method: 'PUT', headers: { authorization: `Bearer ${t.participantToken}`, 'content-type': 'application/octet-stream' }, body })),
  },
  ...([8192, 4096] as const).map((channels): Attack => ({
    name: `federation-channels-${channels}`,
    row: `POST /v1/federations with channels: ${channels}`,
    run: (t) => timed(() => fetch(`${t.url}/v1/federations`, {
      method: 'POST',
      headers: { authorization: `Bearer ${t.adminToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `wide-${channels}`, backbone: { ...t.backbone, channels }, k: 11, rounds: 1, localSteps: 1, maxParticipants: 2 }),
    })),
  })),
];
