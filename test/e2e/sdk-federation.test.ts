// The participant SDK end to end, through the `fuss` command line as a deployment would use it: an
// admin creates a federation and enrols three participants, three `fuss join` processes train on
// their own (tiny, generated) data over real HTTP for two rounds, and `fuss segment` uses the result.
// Then a participant is killed during its upload, twice (once after the server stored the update,
// once before), and restarted: the rounds complete and its update counts once each time.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { decodeModel } from '@fuss/core';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';
import { ADMIN, adminHeaders, BIN, startServer, stop, type ServerProcess } from './server-helper.js';

let dir: { path: string; remove: () => Promise<void> };
let server: ServerProcess;
let models: { cnn: string; vit: string };
const sites = ['site-a', 'site-b', 'site-c'];

interface Finished {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function fuss(args: string[], env: NodeJS.ProcessEnv = {}): { child: ChildProcess; done: Promise<Finished> } {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, DATABASE_URL: '', CI: 'true', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (d) => (stdout += d));
  child.stderr!.on('data', (d) => (stderr += d));
  const done = new Promise<Finished>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal, stdout, stderr })));
  return { child, done };
}

async function fussOk(args: string[], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const result = await fuss(args, env).done;
  expect(result.code, `fuss ${args.join(' ')}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

const joinArgs = (url: string, i: number, backbone = models.cnn) => ['join', '--server', url, '--data', join(dir.path, sites[i]), '--backbone', backbone, '--cache', join(dir.path, `cache-${sites[i]}`), '--threads', '1', '--json'];

async function createFederation(rounds: number): Promise<{ id: string; tokens: string[] }> {
  const created = JSON.parse(
    await fussOk(
      ['federation', 'create', '--server', server.url, '--name', `e2e-${Math.random()}`, '--backbone', models.cnn, '--k', '2', '--code-dim', '4', '--rounds', String(rounds), '--local-steps', '3', '--max-participants', '3', '--strategy', 'fedcc-kmeans', '--json'],
      { FUSS_ADMIN_TOKEN: ADMIN },
    ),
  ) as { id: string };
  const tokens: string[] = [];
  for (const name of sites) tokens.push((await fussOk(['participant', 'add', '--server', server.url, '--federation', created.id, '--name', name], { FUSS_ADMIN_TOKEN: ADMIN })).trim());
  return { id: created.id, tokens };
}

async function history(id: string) {
  const body = (await (await fetch(`${server.url}/v1/federations/${id}/rounds`, { headers: adminHeaders })).json()) as { rounds: { number: number; state: string; updates: number }[] };
  return body.rounds.map((r) => [r.number, r.state, r.updates]);
}

beforeAll(async () => {
  dir = await makeTempDir('fuss-e2e-sdk-');
  for (const [i, site] of sites.entries()) await makeTinyDataset(join(dir.path, site), { images: 3 + i, width: 32, height: 24, domains: [site], labels: false });
  models = await writeTinyBackbones(join(dir.path, 'models'));
  server = await startServer({}, ['--db-dir', join(dir.path, 'db'), '--backbone', models.cnn]);
});
afterAll(async () => {
  await stop(server.child);
  await dir.remove();
});

describe('three participant processes with the SDK over HTTP', () => {
  it('train two rounds: every update counts, the model changes, and fuss segment uses the result', async () => {
    const { id, tokens } = await createFederation(2);
    const runs = await Promise.all(tokens.map((token, i) => fuss(joinArgs(server.url, i), { FUSS_TOKEN: token }).done));
    for (const run of runs) expect(run.code, run.stderr).toBe(0);
    for (const [i, run] of runs.entries()) {
      const summaries = run.stdout.trim().split('\n').map((line) => JSON.parse(line));
      expect(summaries.map((s) => [s.round, s.status, s.steps, s.samples])).toEqual([[1, 'submitted', 3, 3 + i], [2, 'submitted', 3, 3 + i]]);
      expect(summaries[0].bytes.uploaded).toBeGreaterThan(0);
      expect(run.stderr).toMatch(/the federation is finished/);
      // The token never reaches the participant's output.
      expect(run.stderr + run.stdout).not.toContain(tokens[i]);
    }
    expect(await history(id)).toEqual([[1, 'closed', 3], [2, 'closed', 3]]);
    const download = async (version: number) => Buffer.from(await (await fetch(`${server.url}/v1/federations/${id}/models/${version}`, { headers: adminHeaders })).arrayBuffer());
    const versions = await Promise.all([0, 1, 2].map(download));
    expect(versions.map((m) => decodeModel(m).version)).toEqual([0, 1, 2]);
    expect(versions[1].equals(versions[0])).toBe(false);
    expect(versions[2].equals(versions[1])).toBe(false);

    const image = join(dir.path, 'site-a', 'images', (await readdir(join(dir.path, 'site-a', 'images')))[0]);
    const mask = join(dir.path, 'mask.png');
    await fussOk(['segment', '--server', server.url, '--federation', id, '--image', image, '--out', mask], { FUSS_TOKEN: tokens[0] });
    const meta = await sharp(await readFile(mask)).metadata();
    expect([meta.width, meta.height]).toEqual([32, 24]);
  });

  it('refuses a backbone that is not the federation\'s before training, with one readable line', async () => {
    const { tokens } = await createFederation(1);
    const run = await fuss(joinArgs(server.url, 0, models.vit), { FUSS_TOKEN: tokens[0] }).done;
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(/error: backbone .* is not the federation's/);
    expect(run.stderr).not.toMatch(/training/);
  });
});

describe('a participant killed during its upload', () => {
  let proxy: Server;
  let proxyUrl = '';
  /** What the proxy does with the next PUT: kill the participant after the server answered, or before forwarding. */
  let nextPut: { when: 'after-server' | 'before-server'; kill: () => void } | undefined;

  beforeAll(async () => {
    const target = new URL(server.url);
    proxy = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const plan = req.method === 'PUT' ? nextPut : undefined;
        if (plan) nextPut = undefined;
        if (plan?.when === 'before-server') {
          plan.kill();
          res.destroy();
          return;
        }
        const upstream = request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers }, (answer) => {
          const body: Buffer[] = [];
          answer.on('data', (c: Buffer) => body.push(c));
          answer.on('end', () => {
            if (plan?.when === 'after-server') {
              // The server stored the update; the participant dies before it hears so.
              plan.kill();
              res.destroy();
              return;
            }
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            res.end(Buffer.concat(body));
          });
        });
        upstream.on('error', () => res.destroy());
        upstream.end(Buffer.concat(chunks));
      });
    });
    await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve));
    proxyUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => proxy.close(() => resolve())));

  it('is restarted; the rounds complete and its update counts once each time', async () => {
    const { id, tokens } = await createFederation(2);
    const others = [1, 2].map((i) => fuss(joinArgs(server.url, i), { FUSS_TOKEN: tokens[i] }).done);

    // Round 1: the server stores the update, the participant is killed before the answer arrives.
    const first = fuss(joinArgs(proxyUrl, 0), { FUSS_TOKEN: tokens[0] });
    nextPut = { when: 'after-server', kill: () => first.child.kill('SIGKILL') };
    expect((await first.done).signal).toBe('SIGKILL');
    // Round 2 (after a restart through the proxy): killed before the server sees the upload.
    const second = fuss(joinArgs(proxyUrl, 0), { FUSS_TOKEN: tokens[0] });
    nextPut = { when: 'before-server', kill: () => second.child.kill('SIGKILL') };
    const killed = await second.done;
    expect(killed.signal, killed.stderr).toBe('SIGKILL');

    // Restarted directly: it sends the update it saved before the kill, without training again.
    const third = await fuss(joinArgs(server.url, 0), { FUSS_TOKEN: tokens[0] }).done;
    expect(third.code, third.stderr).toBe(0);
    const resumed = third.stdout.trim().split('\n').map((line) => JSON.parse(line));
    expect(resumed.map((s) => [s.round, s.resumed, s.duplicate, s.steps])).toEqual([[2, true, false, 0]]);
    for (const run of await Promise.all(others)) expect(run.code, run.stderr).toBe(0);
    expect(await history(id)).toEqual([[1, 'closed', 3], [2, 'closed', 3]]);
  });
});
