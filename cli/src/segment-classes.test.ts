// fuss segment --model (local inference), fuss classes show|set and fuss label, in-process, on tiny
// generated data and a real aggregation server on loopback.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import type { FastifyInstance } from 'fastify';
import { buildApp, openDatabase, type Database } from '@fuss/aggregator';
import { Backbone, createRng, encodeModel, featureConfigKey, initCentroids, initHead } from '@fuss/core';
import { main } from './index.js';
import type { CliIo } from './io.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';

const ADMIN = 'admin-token-for-cli-tests-0123456789';

function fakeIo(env: NodeJS.ProcessEnv = {}, answer?: string) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), interactive: false, colour: false, env, cwd: process.cwd(), ask: answer === undefined ? undefined : async () => answer };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

let dir: { path: string; remove: () => Promise<void> };
let data: string;
let models: { cnn: string; vit: string };
let modelFile: string;
let k: number;

beforeAll(async () => {
  dir = await makeTempDir();
  data = join(dir.path, 'data');
  await makeTinyDataset(data, { images: 4, width: 32, height: 24 });
  models = await writeTinyBackbones(join(dir.path, 'models'));
  // A model on the tiny CNN (8 channels): random head, 3 centroids.
  const backbone = await Backbone.open(models.cnn);
  const rng = createRng(5);
  k = 3;
  modelFile = join(dir.path, 'model.safetensors');
  await writeFile(modelFile, encodeModel({
    head: initHead({ channels: 8, codeDim: 4 }, rng), centroids: initCentroids(k, 4, rng), channels: 8, codeDim: 4, k,
    backbone: { id: 'tiny-cnn', sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) }, round: 0, version: 0,
  }));
  await backbone.close();
});
afterAll(() => dir.remove());

const local = (extra: string[]) => ['segment', '--model', modelFile, '--backbone', models.cnn, ...extra];

describe('fuss segment --model (no server)', () => {
  it('writes a mask of the image\'s size, as a PNG of ids, JSON with class names, or an overlay with a legend', async () => {
    const image = join(data, 'images', 'siteA_0000.png');
    const png = join(dir.path, 'mask.png');
    const r = fakeIo();
    expect(await main(local(['--image', image, '--out', png]), r.io), r.stderr()).toBe(0);
    const { data: ids, info } = await sharp(png).extractChannel(0).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height]).toEqual([32, 24]);
    expect(Math.max(...ids)).toBeLessThan(k);
    expect(r.stderr()).toMatch(/wrote .*mask\.png \(32x24, 3 classes\)/);

    const classesFile = join(dir.path, 'names.json');
    await writeFile(classesFile, JSON.stringify({ classes: [{ id: 0, name: 'warm', colour: '#ff0000' }] }));
    const json = join(dir.path, 'mask.json');
    expect(await main(local(['--image', image, '--out', json, '--format', 'json', '--classes', classesFile]), fakeIo().io)).toBe(0);
    const body = JSON.parse(await readFile(json, 'utf8'));
    expect([body.width, body.height, body.mask.length]).toEqual([32, 24, 768]);
    expect(body.mask).toEqual(Array.from(ids));
    expect(body.classes[0]).toMatchObject({ id: 0, name: 'warm', colour: '#ff0000' });

    const overlay = join(dir.path, 'overlay.png');
    expect(await main(local(['--image', image, '--out', overlay, '--format', 'overlay', '--legend', '--refine', 'crf']), fakeIo().io)).toBe(0);
    const meta = await sharp(overlay).metadata();
    expect(meta.width).toBe(32 + 240); // the legend panel is 240 pixels wide
    expect(meta.height).toBeGreaterThanOrEqual(24);
  });

  it('segments a folder into one mask per image, with progress', async () => {
    const out = join(dir.path, 'masks');
    const r = fakeIo();
    expect(await main(local(['--image', join(data, 'images'), '--out', out, '--refine', 'crf']), r.io), r.stderr()).toBe(0);
    expect((await readdir(out)).sort()).toEqual(['siteA_0000.png', 'siteA_0002.png', 'siteB_0001.png', 'siteB_0003.png']);
    expect(r.stderr()).toMatch(/segment: 4\/4/);
    expect(r.stderr()).toMatch(/segment: 4 masks in /);
  });

  it('exits 2 on usage mistakes and 1 with one line on bad files', async () => {
    const image = join(data, 'images', 'siteA_0000.png');
    const usage: [string[], RegExp][] = [
      [['segment', '--image', image, '--out', 'x.png'], /give --model FILE \(with --backbone\) to segment locally, or --server URL and --federation ID/],
      [['segment', '--model', modelFile, '--image', image, '--out', 'x.png'], /--model needs --backbone/],
      [local(['--image', image, '--out', 'x.png', '--legend']), /--legend goes with --format overlay/],
      [local(['--image', join(dir.path, 'models', 'tiny-cnn.onnx'), '--out', 'x.png']), /--image must be a \.png, \.jpg or \.jpeg file or a folder/],
      [['segment', '--server', 'http://127.0.0.1:1', '--federation', 'f', '--image', image, '--out', 'x.png', '--refine', 'crf'], /--refine applies to local segmentation/],
    ];
    for (const [argv, message] of usage) {
      const r = fakeIo();
      expect(await main(argv, r.io), argv.join(' ')).toBe(2);
      expect(r.stderr().split('\n')[0]).toMatch(message);
    }
    const badClasses = join(dir.path, 'bad-classes.json');
    await writeFile(badClasses, JSON.stringify({ classes: [{ id: 9, name: 'beyond K' }] }));
    const failures: [string[], RegExp][] = [
      [local(['--image', join(dir.path, 'none.png'), '--out', 'x.png']), /cannot read .*none\.png: no such file or folder/],
      [['segment', '--model', join(dir.path, 'none.safetensors'), '--backbone', models.cnn, '--image', image, '--out', 'x.png'], /cannot read model .*none\.safetensors: no such file/],
      [local(['--image', image, '--out', 'x.png', '--classes', badClasses]), /id 9 is not an integer in 0\.\.2/],
      [['segment', '--model', modelFile, '--backbone', models.vit, '--image', image, '--out', 'x.png'], /model/],
    ];
    for (const [argv, message] of failures) {
      const r = fakeIo();
      expect(await main(argv, r.io), argv.join(' ')).toBe(1);
      expect(r.stderr().trim().split('\n').filter((l) => l.startsWith('error:'))).toHaveLength(1);
      expect(r.stderr()).toMatch(message);
    }
  });
});

describe('fuss evaluate --refine crf', () => {
  it('scores the CRF-refined masks of a model', async () => {
    const run = async (extra: string[]) => {
      const r = fakeIo();
      expect(await main(['evaluate', '--data', data, '--backbone', models.cnn, '--model', modelFile, '--cache', join(dir.path, 'cache'), '--json', ...extra], r.io), r.stderr()).toBe(0);
      return JSON.parse(r.stdout());
    };
    const plain = await run([]);
    const refined = await run(['--refine', 'crf', '--crf-working-pixels', '200']);
    expect([plain.refine, refined.refine]).toEqual(['none', 'crf']);
    expect(refined.images).toBe(4);
    expect(refined.mIoU).toBeGreaterThanOrEqual(0);
    expect(refined.mIoU).toBeLessThanOrEqual(100);
  });
});

describe('fuss classes and fuss label against a server', () => {
  let db: Database;
  let app: FastifyInstance;
  let server = '';
  let federation = '';
  let token = '';

  beforeAll(async () => {
    db = await openDatabase({ pgliteDir: 'memory://' });
    await db.migrate();
    app = await buildApp({ db, config: { adminToken: ADMIN } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    server = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    const backbone = await Backbone.open(models.cnn);
    const created = await app.inject({
      method: 'POST', url: '/v1/federations', headers: { authorization: `Bearer ${ADMIN}` },
      payload: { name: 'cli-classes', backbone: { id: 'tiny-cnn', sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor), channels: 8 }, codeDim: 4, k: 3, rounds: 1, localSteps: 1, maxParticipants: 1 },
    });
    await backbone.close();
    federation = created.json().id;
    token = (await app.inject({ method: 'POST', url: `/v1/federations/${federation}/participants`, headers: { authorization: `Bearer ${ADMIN}` }, payload: { name: 'site' } })).json().token;
  });
  afterAll(async () => {
    await app?.close();
    await db?.close();
  });

  const remote = (words: string[], extra: string[]) => [...words, '--server', server, '--federation', federation, '--retries', '1', ...extra];

  it('sets names as admin (from --names or a file) and shows them to a participant', async () => {
    const set = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN });
    expect(await main(remote(['classes', 'set'], ['--names', '0=sky,2=road:#804080']), set.io), set.stderr()).toBe(0);
    expect(set.stdout()).toBe('   0  sky\n   2  road  #804080\n');
    const show = fakeIo({ FUSS_TOKEN: token });
    expect(await main(remote(['classes', 'show'], ['--json']), show.io), show.stderr()).toBe(0);
    expect(JSON.parse(show.stdout())).toEqual({ classes: [{ id: 0, name: 'sky' }, { id: 2, name: 'road', colour: '#804080' }] });
    const file = join(dir.path, 'classes.json');
    await writeFile(file, JSON.stringify({ classes: [{ id: 1, name: 'building' }] }));
    expect(await main(remote(['classes', 'set'], ['--file', file, '--json']), fakeIo({ FUSS_ADMIN_TOKEN: ADMIN }).io)).toBe(0);
    const after = fakeIo({ FUSS_TOKEN: token });
    await main(remote(['classes', 'show'], []), after.io);
    expect(after.stdout()).toBe('   1  building\n');
  });

  it('refuses bad names and a participant writing, with one readable line', async () => {
    const usage = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN });
    expect(await main(remote(['classes', 'set'], ['--names', 'sky']), usage.io)).toBe(2);
    expect(usage.stderr()).toMatch(/--names takes ID=NAME/);
    const beyond = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN });
    expect(await main(remote(['classes', 'set'], ['--names', '7=far']), beyond.io)).toBe(1);
    expect(beyond.stderr()).toMatch(/^error: .*400 bad-classes: .*id 7 is not an integer in 0\.\.2/);
    const participant = fakeIo();
    expect(await main(remote(['classes', 'set'], ['--names', '0=sky', '--admin-token', token]), participant.io)).toBe(1);
    expect(participant.stderr()).toMatch(/403/);
  });

  it('fuss label proposes names from labelled images, shows them, and writes them only once confirmed', async () => {
    const base = remote(['label'], ['--data', data, '--backbone', models.cnn, '--cache', join(dir.path, 'cache'), '--min-precision', '0']);
    await main(remote(['classes', 'set'], ['--names', '0=placeholder']), fakeIo({ FUSS_ADMIN_TOKEN: ADMIN }).io);
    const stored = async () => (await app.inject({ method: 'GET', url: `/v1/federations/${federation}/classes`, headers: { authorization: `Bearer ${ADMIN}` } })).json().classes;
    // Not confirmed: shown, not written.
    const shown = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN });
    expect(await main(base, shown.io), shown.stderr()).toBe(0);
    expect(shown.stdout()).toMatch(/Proposed names for the 3 classes of federation .* from 4 labelled images/);
    expect(shown.stderr()).toMatch(/not written: run again with --yes/);
    expect(await stored()).toEqual([{ id: 0, name: 'placeholder' }]);
    const declined = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN }, 'n');
    expect(await main(base, declined.io)).toBe(0);
    expect(await stored()).toEqual([{ id: 0, name: 'placeholder' }]);
    // Confirmed: the dataset's class names (warm, cold) go to the matched ids.
    const out = join(dir.path, 'label-classes.json');
    const confirmed = fakeIo({ FUSS_ADMIN_TOKEN: ADMIN }, 'y');
    expect(await main([...base, '--json', '--out', out], confirmed.io), confirmed.stderr()).toBe(0);
    const { proposals, classes } = JSON.parse(confirmed.stdout());
    expect(proposals).toHaveLength(3);
    expect(classes.length).toBeGreaterThan(0);
    for (const c of classes) expect(['warm', 'cold']).toContain(c.name);
    expect(await stored()).toEqual(classes);
    expect(JSON.parse(await readFile(out, 'utf8'))).toEqual({ classes });
  });

  it('fuss label on a model file writes a classes file with --yes', async () => {
    const out = join(dir.path, 'model-classes.json');
    const r = fakeIo();
    expect(await main(['label', '--model', modelFile, '--data', data, '--backbone', models.cnn, '--out', out, '--yes', '--min-precision', '0', '--cache', join(dir.path, 'cache')], r.io), r.stderr()).toBe(0);
    const { classes } = JSON.parse(await readFile(out, 'utf8'));
    for (const c of classes) expect(['warm', 'cold']).toContain(c.name);
    const usage = fakeIo();
    expect(await main(['label', '--model', modelFile, '--data', data, '--backbone', models.cnn], usage.io)).toBe(2);
    expect(usage.stderr()).toMatch(/give --out FILE/);
    const unlabelled = join(dir.path, 'unlabelled');
    await mkdir(unlabelled, { recursive: true });
    await makeTinyDataset(unlabelled, { images: 2, labels: false });
    const noLabels = fakeIo();
    expect(await main(['label', '--model', modelFile, '--data', unlabelled, '--backbone', models.cnn, '--out', out], noLabels.io)).toBe(1);
  });
});
