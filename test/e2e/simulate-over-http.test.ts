// `fuss simulate --over-http` (real server, one `fuss join` process per participant) against the
// in-process simulator with the same data, partition, seeds and settings: the global models agree.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { decodeModel, HEAD_PARAM_NAMES } from '@fuss/core';
import { main } from '../../cli/src/index.js';
import type { CliIo } from '../../cli/src/io.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';

function fakeIo() {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), interactive: false, colour: false, env: {}, cwd: process.cwd() };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

let dir: { path: string; remove: () => Promise<void> };
let data: string;
let models: { cnn: string; vit: string };
beforeAll(async () => {
  dir = await makeTempDir('fuss-e2e-over-http-');
  data = join(dir.path, 'data');
  await makeTinyDataset(data, { images: 9, width: 32, height: 24, domains: ['siteA', 'siteB', 'siteC'] });
  models = await writeTinyBackbones(join(dir.path, 'models'));
});
afterAll(() => dir.remove());

/** Runs the same federation in process and over HTTP; returns both summaries after comparing the models bit for bit. */
async function bothWays(name: string, settings: string[]) {
  const args = (out: string, extra: string[]) => [
    'simulate', '--data', data, '--eval', data, '--backbone', models.cnn, '--clients', '3', '--partition', 'domain', ...settings,
    '--local-steps', '3', '--k', '2', '--seed', '3', '--threads', '1', '--cache', join(dir.path, 'cache'), '--out', out, '--json', ...extra,
  ];
  const local = fakeIo();
  expect(await main(args(join(dir.path, `${name}-in-process`), []), local.io), local.stderr()).toBe(0);
  const remote = fakeIo();
  expect(await main(args(join(dir.path, `${name}-over-http`), ['--over-http']), remote.io), remote.stderr()).toBe(0);
  const a = JSON.parse(local.stdout());
  const b = JSON.parse(remote.stdout());
  expect(b.settings.overHttp).toBe(true);
  expect(b.partition.map((p: { images: number }) => p.images)).toEqual(a.partition.map((p: { images: number }) => p.images));
  expect(b.final).toEqual(a.final);
  const modelA = decodeModel(await readFile(join(dir.path, `${name}-in-process`, 'global.safetensors')));
  const modelB = decodeModel(await readFile(join(dir.path, `${name}-over-http`, 'global.safetensors')));
  for (const tensor of HEAD_PARAM_NAMES) expect(Array.from(modelB.head[tensor]), tensor).toEqual(Array.from(modelA.head[tensor]));
  expect(Array.from(modelB.centroids)).toEqual(Array.from(modelA.centroids));
  return { a, b };
}

describe('fuss simulate --over-http', () => {
  it('reproduces the in-process federation (same partition, seeds and settings)', async () => {
    const { b } = await bothWays('paper', ['--strategy', 'fedcc-kmeans', '--regularizer', 'moon', '--rounds', '2']);
    expect(b.participants.map((p: { rounds: unknown[] }) => p.rounds.length)).toEqual([2, 2, 2]);
    expect(b.timing.participantComputeSeconds).toBeGreaterThan(0);
    expect(b.timing.participantHttpSeconds).toBeGreaterThan(0);
  });

  it('reproduces it with every mechanism of issue 16 on: server optimiser, kept Adam states, schedule, views, model selection', async () => {
    const { a, b } = await bothWays('mechanisms', [
      '--strategy', 'fedcc-kmeans-cosine', '--modules', 'E,C', '--server-optimizer', 'fedadam', '--local-optimizer', 'keep', '--lr-schedule', 'cosine',
      '--augment', 'flip', '--selection', 'loss:0.4:0', '--rounds', '3',
    ]);
    expect(b.participants.map((p: { rounds: unknown[] }) => p.rounds.length)).toEqual([3, 3, 3]);
    // The server's score of each round's starting model is the simulator's, and so is the selected version.
    expect(b.rounds.map((r: { score: unknown }) => r.score)).toEqual(a.rounds.map((r: { score: { version: number; value: number } }) => ({ version: r.score.version, value: r.score.value })));
    const { rule, ...selection } = a.selection;
    expect(rule).toBe('loss:0.4:0');
    expect(b.selection).toEqual(selection);
    expect(a.settings).toMatchObject({ serverOptimizer: 'fedadam:0.01:0.001:0.9:0.99', localOptimizer: 'keep', augment: 'flip', selection: 'loss:0.4:0' });
  });
});
