// A federation of three participants driven over real HTTP for two rounds against `fuss server
// --backbone`: every update lands, the global model changes each round, the history persists, and
// /segment returns a mask of the image's size. (Participants send synthetic updates here; the SDK's
// own end-to-end test trains them.)

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { Backbone, createRng, decodeModel, encodeModel, featureConfigKey, initCentroids, initHead } from '@fuss/core';
import { buildTinyCnn } from '../../services/core/src/test-support/tiny-backbones.js';
import { adminHeaders, startServer, stop, waitForRoundClosed, type ServerProcess } from './server-helper.js';

let dir = '';
let server: ServerProcess;
let backbone: { sha256: string; featureKey: string };

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'fuss-e2e-fed-'));
  const modelPath = join(dir, 'tiny-cnn.onnx');
  await writeFile(modelPath, buildTinyCnn());
  const opened = await Backbone.open(modelPath);
  backbone = { sha256: opened.descriptor.sha256, featureKey: featureConfigKey(opened.descriptor) };
  await opened.close();
  server = await startServer({}, ['--db-dir', join(dir, 'db'), '--backbone', modelPath]);
});
afterAll(async () => {
  await stop(server.child);
  await rm(dir, { recursive: true, force: true });
});

function update(seed: number, round: number): Buffer {
  const rng = createRng(seed);
  return Buffer.from(encodeModel({ head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(3, 4, rng), channels: 8, codeDim: 4, k: 3, backbone: { id: 'tiny-cnn', ...backbone }, round, version: round - 1 }));
}

describe('a federation of three participants over HTTP', () => {
  it('runs two rounds, changes the model each round, keeps the history, and segments', async () => {
    const created = await fetch(`${server.url}/v1/federations`, {
      method: 'POST',
      headers: adminHeaders,
      body: JSON.stringify({ name: 'http', backbone: { id: 'tiny-cnn', ...backbone, channels: 8 }, codeDim: 4, k: 3, rounds: 2, localSteps: 1, maxParticipants: 3, strategy: 'fedcc-kmeans' }),
    });
    const { id } = (await created.json()) as { id: string };
    const tokens: string[] = [];
    for (const name of ['a', 'b', 'c']) {
      const r = await fetch(`${server.url}/v1/federations/${id}/participants`, { method: 'POST', headers: adminHeaders, body: JSON.stringify({ name }) });
      tokens.push(((await r.json()) as { token: string }).token);
    }
    const models: Buffer[] = [];
    const download = async () => Buffer.from(await (await fetch(`${server.url}/v1/federations/${id}/models/latest`, { headers: { authorization: `Bearer ${tokens[0]}` } })).arrayBuffer());
    models.push(await download());
    for (const round of [1, 2]) {
      for (const [i, token] of tokens.entries()) {
        const join = (await (await fetch(`${server.url}/v1/federations/${id}/rounds/current/join`, { method: 'POST', headers: { authorization: `Bearer ${token}` } })).json()) as { status: string; round: number };
        expect(join).toMatchObject({ status: 'open', round });
        const r = await fetch(`${server.url}/v1/federations/${id}/rounds/${round}/update?samples=${10 + i}`, { method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/octet-stream' }, body: update(round * 10 + i, round) });
        expect(r.status).toBe(201);
      }
      await waitForRoundClosed(server.url, id, round);
      models.push(await download());
    }
    expect(models.map((m) => decodeModel(m).version)).toEqual([0, 1, 2]);
    expect(models[1].equals(models[0])).toBe(false);
    expect(models[2].equals(models[1])).toBe(false);
    const history = ((await (await fetch(`${server.url}/v1/federations/${id}/rounds`, { headers: adminHeaders })).json()) as { rounds: { number: number; state: string; updates: number }[] }).rounds;
    expect(history.map((r) => [r.number, r.state, r.updates])).toEqual([[1, 'closed', 3], [2, 'closed', 3]]);

    const image = await sharp(Buffer.alloc(40 * 28 * 3, 120), { raw: { width: 40, height: 28, channels: 3 } }).png().toBuffer();
    const mask = await fetch(`${server.url}/segment?federation=${id}`, { method: 'POST', headers: { authorization: `Bearer ${tokens[1]}`, 'content-type': 'image/png' }, body: image });
    expect(mask.status).toBe(200);
    expect(mask.headers.get('x-model-version')).toBe('2');
    const meta = await sharp(Buffer.from(await mask.arrayBuffer())).metadata();
    expect([meta.width, meta.height]).toEqual([40, 28]);
  });
});
