import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer, type Server } from 'node:http';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { main } from './index.js';
import type { CliIo } from './io.js';
import { buildTinyVit } from '../../services/core/src/test-support/tiny-backbones.js';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';
import { DEVICE_REQUESTS, probeProvider } from '../../services/core/src/device/execution-device.js';
import { FEDERATION_DEFAULTS, PAPER_FEDERATION } from '../../services/core/src/defaults.js';
import { DEVICE_CHOICES, FEDERATION_DEFAULT_OPTIONS, FEDERATION_PRESETS } from './commands/shared.js';

function fakeIo(env: NodeJS.ProcessEnv = {}) {
  const out: string[] = [];
  const err: string[] = [];
  const io: CliIo = { stdout: (t) => out.push(t), stderr: (t) => err.push(t), interactive: false, colour: false, env, cwd: process.cwd() };
  return { io, stdout: () => out.join(''), stderr: () => err.join('') };
}

let dir: { path: string; remove: () => Promise<void> };
let data: string;
let models: { cnn: string; vit: string };
beforeAll(async () => {
  dir = await makeTempDir();
  data = join(dir.path, 'data');
  await makeTinyDataset(data, { images: 6, width: 32, height: 24 });
  models = await writeTinyBackbones(join(dir.path, 'models'));
});
afterAll(() => dir.remove());

describe('fuss (dispatch and help)', () => {
  it('prints the command list and per-command help', async () => {
    const top = fakeIo();
    expect(await main(['--help'], top.io)).toBe(0);
    for (const name of ['features', 'train', 'evaluate', 'backbone pull']) expect(top.stdout()).toMatch(new RegExp(`\\n  ${name} +\\S`));
    for (const command of [['features'], ['train'], ['evaluate'], ['backbone', 'pull']]) {
      const h = fakeIo();
      expect(await main([...command, '--help'], h.io)).toBe(0);
      expect(h.stdout()).toMatch(/Usage\n {2}fuss .*\n\nOptions\n/);
      expect(h.stdout()).toMatch(/Examples/);
    }
  });

  it('exits 2 with one readable line and the help on usage errors', async () => {
    const cases: [string[], RegExp][] = [
      [['nonsense'], /unknown command "nonsense"/],
      [['features'], /missing required option --data/],
      [['evaluate', '--data', data, '--backbone', models.cnn, '--kmeans', 'many'], /--kmeans must be an integer \(got "many"\)/],
      [['evaluate', '--data', data, '--backbone', models.cnn, '--kmeans', '0'], /--kmeans must be at least 1/],
      [['features', '--data', data, '--backbone', models.cnn, '--bogus'], /Unknown option '--bogus'/],
      [['features', '--data', data, '--backbone', models.cnn, '--device', 'tpu'], /--device must be one of auto, cpu, webgpu, cuda/],
      [['backbone', 'pull', 'dino-huge'], /unknown backbone "dino-huge"/],
    ];
    for (const [argv, message] of cases) {
      const r = fakeIo();
      expect(await main(argv, r.io), argv.join(' ')).toBe(2);
      expect(r.stderr().split('\n')[0]).toMatch(message);
    }
  });

  it('exits 1 with a one-line error on bad data, and no stack without --debug', async () => {
    const r = fakeIo();
    expect(await main(['features', '--data', join(dir.path, 'missing'), '--backbone', models.cnn], r.io)).toBe(1);
    expect(r.stderr()).toMatch(/^error: dataset folder .*missing does not exist/m);
    expect(r.stderr()).not.toMatch(/\n\s+at /);
    const d = fakeIo();
    expect(await main(['features', '--data', data, '--backbone', join(dir.path, 'nope.onnx'), '--debug'], d.io)).toBe(1);
    expect(d.stderr()).toMatch(/cannot read backbone model .*nope\.onnx: ENOENT/);
    expect(d.stderr()).toMatch(/\n\s+at /);
  });
});

describe('fuss features', () => {
  it('extracts, then reads everything from the cache on the second run', async () => {
    const cache = join(dir.path, 'cache-features');
    const first = fakeIo();
    expect(await main(['features', '--data', data, '--backbone', models.cnn, '--cache', cache, '--json'], first.io)).toBe(0);
    expect(JSON.parse(first.stdout())).toMatchObject({ images: 6, computed: 6, cached: 0, featureShape: '8x12x16' });
    const second = fakeIo();
    expect(await main(['features', '--data', data, '--backbone', models.cnn, '--cache', cache, '--json'], second.io)).toBe(0);
    expect(JSON.parse(second.stdout())).toMatchObject({ images: 6, computed: 0, cached: 6 });
    expect(first.stderr()).toMatch(/features: 6\/6/);
  });

  it('works on ViT tokens and on several outputs', async () => {
    const vit = fakeIo();
    expect(await main(['features', '--data', data, '--backbone', models.vit, '--input-size', 'native/4', '--no-cache', '--json'], vit.io)).toBe(0);
    expect(JSON.parse(vit.stdout()).featureShape).toBe('16x6x8');
    const multi = fakeIo();
    expect(await main(['features', '--data', data, '--backbone', models.cnn, '--outputs', 'feat_s2,feat_s4', '--no-cache', '--json'], multi.io)).toBe(0);
    expect(JSON.parse(multi.stdout()).featureShape).toBe('20x12x16');
  });
});

describe('fuss evaluate --kmeans', () => {
  it('separates the two regions of the synthetic images', async () => {
    const r = fakeIo();
    const code = await main(['evaluate', '--data', data, '--backbone', models.cnn, '--kmeans', '2', '--cache', join(dir.path, 'cache-eval'), '--json'], r.io);
    expect(code, r.stderr()).toBe(0);
    const result = JSON.parse(r.stdout());
    expect(Object.keys(result.perClassIoU)).toEqual(['warm', 'cold']);
    expect(result.images).toBe(6);
    // Two colour regions, two clusters: nearly every pixel is matched (the split column is blurred at stride 2).
    expect(result.mIoU).toBeGreaterThan(85);
    expect(result.pixelAccuracy).toBeGreaterThan(90);
  });

  it('is reproducible for a seed', async () => {
    const run = async () => {
      const r = fakeIo();
      await main(['evaluate', '--data', data, '--backbone', models.cnn, '--kmeans', '3', '--seed', '7', '--no-cache', '--json'], r.io);
      const { seconds: _s, ...rest } = JSON.parse(r.stdout());
      return rest;
    };
    expect(await run()).toEqual(await run());
  });

  it('refuses an unlabelled evaluation set', async () => {
    const r = fakeIo();
    expect(await main(['evaluate', '--data', join(data, 'images'), '--backbone', models.cnn, '--kmeans', '2'], r.io)).toBe(1);
    expect(r.stderr()).toMatch(/dataset\.json is missing/);
  });
});

describe('fuss train and evaluate --model', () => {
  const trainArgs = (out: string, extra: string[] = []) => [
    'train', '--data', data, '--backbone', models.cnn, '--k', '2', '--steps', '15', '--out', out,
    '--queries', '3', '--negatives', '2', '--code-dim', '4', '--cache', join(dir.path, 'cache-train'), '--json', ...extra,
  ];

  it('trains with each engine, writes a model that evaluate reads, and resumes from it', async () => {
    for (const engine of ['onnx', 'tfjs']) {
      const out = join(dir.path, `model-${engine}.safetensors`);
      const r = fakeIo();
      expect(await main(trainArgs(out, ['--engine', engine]), r.io), r.stderr()).toBe(0);
      expect(JSON.parse(r.stdout())).toMatchObject({ steps: 15, engine });
      expect(r.stderr()).toMatch(new RegExp(`engine: ${engine}`));
      expect(r.stderr()).toMatch(/shifts calibrated at quantiles 0.7\/0.7\/0.85/);
      const e = fakeIo();
      expect(await main(['evaluate', '--data', data, '--backbone', models.cnn, '--model', out, '--no-cache', '--json'], e.io), e.stderr()).toBe(0);
      const metrics = JSON.parse(e.stdout());
      expect(metrics.images).toBe(6);
      expect(metrics.mIoU).toBeGreaterThanOrEqual(0);
      expect(metrics.method).toMatch(/model/);
    }
    const resumed = fakeIo();
    const out = join(dir.path, 'model-onnx.safetensors');
    expect(await main(trainArgs(join(dir.path, 'resumed.safetensors'), ['--resume', out]), resumed.io), resumed.stderr()).toBe(0);
    expect(JSON.parse(resumed.stdout()).steps).toBe(30);
  });

  it('--device webgpu trains, on WebGPU where it works, else on the CPU after one fallback line', async () => {
    const webgpu = await probeProvider('webgpu');
    const r = fakeIo();
    expect(await main(trainArgs(join(dir.path, 'model-webgpu.safetensors'), ['--engine', 'onnx', '--device', 'webgpu']), r.io), r.stderr()).toBe(0);
    const deviceLines = r.stderr().split('\n').filter((l) => /webgpu|fall/.test(l));
    expect(deviceLines).toEqual([webgpu.available ? 'device: webgpu (requested)' : `device: cpu (webgpu requested but unavailable: ${webgpu.reason})`]);
    expect(JSON.parse(r.stdout())).toMatchObject({ steps: 15, engine: 'onnx', device: webgpu.available ? 'webgpu' : 'cpu' });
  });

  it('offers the devices @fuss/core resolves', () => {
    expect([...DEVICE_CHOICES]).toEqual([...DEVICE_REQUESTS]);
  });

  it('defaults to @fuss/core\'s federation defaults, and its paper preset is PAPER_FEDERATION', () => {
    const asOptions = (settings: typeof FEDERATION_DEFAULTS | typeof PAPER_FEDERATION) => ({
      strategy: settings.strategy,
      modules: ['W', 'E', 'C'].filter((_, i) => [settings.modules.weighted, settings.modules.head, settings.modules.centroids][i]).join(','),
      robust: settings.robust,
      regularizer: settings.regularizer,
      'server-optimizer': settings.serverOptimizer,
      'local-optimizer': settings.localOptimizer,
      'lr-schedule': settings.lrSchedule,
      augment: settings.augment,
      selection: settings.selection,
    });
    expect(FEDERATION_DEFAULT_OPTIONS).toEqual(asOptions(FEDERATION_DEFAULTS));
    expect(FEDERATION_PRESETS.paper).toEqual(asOptions(PAPER_FEDERATION));
  });

  it('refuses a model of another backbone and bad training options', async () => {
    const out = join(dir.path, 'model-onnx.safetensors');
    const e = fakeIo();
    expect(await main(['evaluate', '--data', data, '--backbone', models.vit, '--model', out, '--no-cache'], e.io)).toBe(1);
    expect(e.stderr()).toMatch(/was trained on backbone tiny-cnn/);
    const shifts = fakeIo();
    expect(await main(trainArgs(join(dir.path, 'x.safetensors'), ['--shifts', '1,2']), shifts.io)).toBe(2);
    expect(shifts.stderr()).toMatch(/--shifts must be three numbers/);
    const both = fakeIo();
    expect(await main(['evaluate', '--data', data, '--backbone', models.cnn, '--kmeans', '2', '--model', out], both.io)).toBe(2);
    const missing = fakeIo();
    expect(await main(['evaluate', '--data', data, '--backbone', models.cnn, '--model', join(dir.path, 'none.safetensors')], missing.io)).toBe(1);
    expect(missing.stderr()).toMatch(/cannot read model .*none\.safetensors: ENOENT/);
  });
});

describe('fuss simulate', () => {
  const base = (extra: string[]) => [
    'simulate', '--data', data, '--eval', data, '--backbone', models.cnn, '--clients', '2', '--partition', 'domain',
    '--rounds', '2', '--local-steps', '4', '--cache', join(dir.path, 'cache-sim'), '--json', ...extra,
  ];

  it('runs a federation, writes per-round metrics, the summary and the global model', async () => {
    const out = join(dir.path, 'sim-fedavg');
    const r = fakeIo();
    expect(await main(base(['--strategy', 'fedavg', '--out', out]), r.io), r.stderr()).toBe(0);
    const summary = JSON.parse(r.stdout());
    expect(summary.partition.map((p: { domains: string[] }) => p.domains)).toEqual([['siteA'], ['siteB']]);
    expect(summary.rounds).toHaveLength(2);
    expect(summary.final.mIoU).toBeGreaterThanOrEqual(0);
    const lines = (await readFile(join(out, 'rounds.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    expect(lines.map((l) => l.round)).toEqual([1, 2]);
    expect(JSON.parse(await readFile(join(out, 'summary.json'), 'utf8')).final).toEqual(summary.final);
    const { decodeModel } = await import('@fuss/core');
    expect(decodeModel(await readFile(join(out, 'global.safetensors'))).round).toBe(2);
    expect(r.stderr()).toMatch(/round 2\/2: mIoU/);
    // One global model per round; the last is global.safetensors.
    for (const round of [1, 2]) expect(decodeModel(await readFile(join(out, `global-round-${round}.safetensors`))).round).toBe(round);
    expect(decodeModel(await readFile(join(out, 'global-round-2.safetensors'))).centroids).toEqual(decodeModel(await readFile(join(out, 'global.safetensors'))).centroids);
    expect(lines[0].permutation).toHaveLength(2);
  });

  it('keeps class ids stable across consecutive global models of FedCC federations (>= 10 of 11)', async () => {
    const { decodeModel, normalizeRows } = await import('@fuss/core');
    for (const strategy of ['fedcc-kmeans', 'fedcc-maximin']) {
      const out = join(dir.path, `sim-stable-${strategy}`);
      const r = fakeIo();
      const argv = base(['--strategy', strategy, '--k', '11', '--out', out]);
      argv[argv.indexOf('--rounds') + 1] = '4';
      expect(await main(argv, r.io), r.stderr()).toBe(0);
      const versions = await Promise.all([1, 2, 3, 4].map(async (n) => decodeModel(await readFile(join(out, `global-round-${n}.safetensors`)))));
      for (let v = 1; v < versions.length; v++) {
        const { k, codeDim } = versions[v];
        const now = normalizeRows(versions[v].centroids, k, codeDim);
        const before = normalizeRows(versions[v - 1].centroids, k, codeDim);
        let kept = 0;
        for (let i = 0; i < k; i++) {
          const cos = Array.from({ length: k }, (_, j) => now.subarray(i * codeDim, (i + 1) * codeDim).reduce((s, x, c) => s + x * before[j * codeDim + c], 0));
          if (cos.indexOf(Math.max(...cos)) === i) kept++;
        }
        expect(kept, `${strategy}: version ${v + 1} against ${v}`).toBeGreaterThanOrEqual(10);
      }
    }
  });

  it('is reproducible for a seed, and runs FedCC with MOON and the baselines', async () => {
    const run = async (extra: string[]) => {
      const r = fakeIo();
      expect(await main(base(extra), r.io), r.stderr()).toBe(0);
      return JSON.parse(r.stdout());
    };
    const a = await run(['--strategy', 'fedcc-kmeans', '--regularizer', 'moon']);
    const b = await run(['--strategy', 'fedcc-kmeans', '--regularizer', 'moon']);
    expect(a.final).toEqual(b.final);
    // Module C only: participants keep their heads; the metrics average over them.
    const cOnly = await run(['--strategy', 'fedcc-maximin', '--modules', 'C']);
    expect(cOnly.rounds).toHaveLength(2);
    const local = await run(['--baseline', 'local']);
    expect(local.runs).toHaveLength(2);
    const central = await run(['--baseline', 'centralized']);
    expect(central.runs).toHaveLength(1);
    expect(central.runs[0].images).toBe(6);
  });

  it('attacks with the first participants and records the attack, the defence and what it refused', async () => {
    const run = async (extra: string[]) => {
      const r = fakeIo();
      expect(await main(base(extra), r.io), r.stderr()).toBe(0);
      return JSON.parse(r.stdout());
    };
    // Three participants, so that a coordinate-wise median has an honest majority.
    const scaled = await run(['--clients', '3', '--partition', 'iid', '--attackers', '1', '--attack', 'scale:1e30', '--robust', 'median']);
    expect(scaled.settings).toMatchObject({ robust: 'median', attack: { attackers: 1, kind: 'scale:1e+30' } });
    expect(scaled.finite).toBe(true);
    const poisoned = await run(['--attackers', '1', '--attack', 'nan']);
    expect(poisoned.settings.robust).toBe('clip');
    expect(poisoned.rounds[0].refused).toEqual([{ clientId: 'client-0', reason: expect.stringMatching(/NaN/) }]);
    expect(poisoned.finite).toBe(true);
    const liar = await run(['--attackers', '1', '--attack', 'samples:1000000000']);
    expect(liar.rounds[0].refused[0].reason).toMatch(/1000000000 samples, above the maximum of 1000000/);
    for (const [args, message] of [
      [['--attack', 'nan'], /--attackers N together with --attack/],
      [['--attackers', '3', '--attack', 'nan'], /more than --clients/],
      [['--attackers', '1', '--attack', 'explode'], /unknown attack "explode"/],
      [['--robust', 'mean'], /unknown robust rule "mean"/],
    ] as const) {
      const r = fakeIo();
      expect(await main(base([...args]), r.io), args.join(' ')).toBe(2);
      expect(r.stderr()).toMatch(message);
    }
  });

  it('takes the paper preset (explicit flags win), the mechanisms of issue 16, and the unseen-domain protocol', async () => {
    const run = async (extra: string[], argv = base(extra)) => {
      const r = fakeIo();
      expect(await main(argv, r.io), r.stderr()).toBe(0);
      return { summary: JSON.parse(r.stdout()), stderr: r.stderr() };
    };
    const paper = await run(['--preset', 'paper']);
    expect(paper.summary.settings).toMatchObject({
      preset: 'paper', strategy: 'fedcc-kmeans', robust: 'none', modules: { weighted: true, head: true, centroids: true }, serverOptimizer: 'none', localOptimizer: 'reset', lrSchedule: 'constant', augment: 'none', selection: 'none',
    });
    const paperFedAvg = await run(['--preset', 'paper', '--strategy', 'fedavg', '--robust', 'clip']);
    expect(paperFedAvg.summary.settings).toMatchObject({ strategy: 'fedavg', robust: 'clip', selection: 'none' });
    const out = join(dir.path, 'sim-mechanisms');
    const mechanisms = await run(['--server-optimizer', 'fedadam', '--local-optimizer', 'keep', '--lr-schedule', 'cosine', '--augment', 'flip', '--selection', 'loss:0.3:0', '--modules', 'E,C', '--out', out]);
    expect(mechanisms.summary.settings).toMatchObject({ serverOptimizer: 'fedadam:0.01:0.001:0.9:0.99', localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'flip', selection: 'loss:0.3:0' });
    expect(mechanisms.summary.selection.selectedVersion).toBeGreaterThanOrEqual(0);
    expect(mechanisms.summary.rounds.map((r: { score: { version: number } }) => r.score.version)).toEqual([0, 1]);
    expect(mechanisms.stderr).toMatch(/participant 0: 3 images \(1 held out\), 2 views/);
    const { decodeModel } = await import('@fuss/core');
    expect(decodeModel(await readFile(join(out, 'selected.safetensors'))).version).toBe(mechanisms.summary.selection.selectedVersion);
    const heldOut = await run([], base(['--hold-out', 'siteA']).map((a, i, all) => (all[i - 1] === '--clients' ? '1' : a)));
    expect(heldOut.stderr).toMatch(/holding out siteA: training on 3 images of siteB, evaluating on its 3 images of --eval/);
    expect(heldOut.summary.partition).toEqual([{ clientId: 'client-0', images: 3, domains: ['siteB'] }]);
    for (const [args, message] of [
      [['--preset', 'fast'], /--preset must be one of paper/],
      [['--server-optimizer', 'adam'], /unknown server optimiser "adam"/],
      [['--augment', 'mirror'], /unknown augmentation "mirror"/],
      [['--selection', 'entropy'], /unknown model selection "entropy"/],
      [['--local-optimizer', 'forget'], /--local-optimizer must be one of reset, keep/],
    ] as const) {
      const r = fakeIo();
      expect(await main(base([...args]), r.io), args.join(' ')).toBe(2);
      expect(r.stderr()).toMatch(message);
    }
    const unknownDomain = fakeIo();
    expect(await main(base(['--hold-out', 'siteZ']), unknownDomain.io)).toBe(1);
    expect(unknownDomain.stderr()).toMatch(/"siteZ" is not one of/);
  });

  it('explains impossible partitions and unknown strategies', async () => {
    const many = fakeIo();
    expect(await main(base(['--clients', '3']), many.io)).toBe(1);
    expect(many.stderr()).toMatch(/domain/);
    const strategy = fakeIo();
    expect(await main(base(['--strategy', 'fedmagic']), strategy.io)).toBe(2);
    expect(strategy.stderr()).toMatch(/unknown strategy "fedmagic"/);
    const modules = fakeIo();
    expect(await main(base(['--modules', 'W,X']), modules.io)).toBe(2);
  });
});

describe('fuss join, federation create, participant add, segment: bad input', () => {
  it('exit 2 with the help for usage mistakes, 1 with one readable line when the server is unreachable', async () => {
    const noToken = fakeIo();
    expect(await main(['join', '--server', 'http://127.0.0.1:1', '--data', data, '--backbone', models.cnn], noToken.io)).toBe(2);
    expect(noToken.stderr()).toMatch(/--token/);
    const badUrl = fakeIo();
    expect(await main(['participant', 'add', '--server', 'ftp://x', '--federation', 'f', '--name', 'a'], badUrl.io)).toBe(2);
    expect(badUrl.stderr()).toMatch(/--server must be an http\(s\) URL/);
    const badImage = fakeIo();
    expect(await main(['segment', '--server', 'http://127.0.0.1:1', '--federation', 'f', '--image', 'x.gif', '--out', 'm.png'], badImage.io)).toBe(2);
    expect(badImage.stderr()).toMatch(/\.png, \.jpg or \.jpeg/);
    // Nothing listens on a port just freed: connection refused, reported on one line after the retries.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const freePort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const down = fakeIo();
    expect(await main(['join', '--server', `http://127.0.0.1:${freePort}`, '--token', 'fuss_p_secret-token', '--data', data, '--backbone', models.cnn, '--retries', '1'], down.io)).toBe(1);
    expect(down.stderr().trim().split('\n')).toHaveLength(1);
    expect(down.stderr()).toMatch(/^error: .*ECONNREFUSED/);
    expect(down.stderr()).not.toContain('secret-token');
  });
});

describe('fuss backbone pull', () => {
  let server: Server;
  let hubUrl: string;
  const requests: string[] = [];
  const model = buildTinyVit();
  beforeAll(async () => {
    server = createServer((req, res) => {
      requests.push(req.url ?? '');
      if (req.url === '/Xenova/dino-vits8/resolve/main/onnx/model.onnx') {
        res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': model.length });
        res.end(Buffer.from(model));
      } else {
        res.writeHead(404).end('not found');
      }
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    hubUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

  it('downloads the model, writes a descriptor, and the backbone then works', async () => {
    const modelsDir = join(dir.path, 'pulled');
    const r = fakeIo();
    expect(await main(['backbone', 'pull', 'dino-vits8', '--models', modelsDir, '--hub-url', hubUrl, '--json'], r.io), r.stderr()).toBe(0);
    const result = JSON.parse(r.stdout());
    expect(result).toMatchObject({ name: 'dino-vits8', downloaded: true, bytes: model.length });
    const descriptor = JSON.parse(await readFile(join(modelsDir, 'dino-vits8.backbone.json'), 'utf8'));
    expect(descriptor).toMatchObject({ id: 'dino-vits8', kind: 'vit', stride: 8, input: 'pixel_values', outputs: ['last_hidden_state'], sha256: result.sha256 });
    expect(Buffer.compare(await readFile(join(modelsDir, 'dino-vits8.onnx')), Buffer.from(model))).toBe(0);

    // A second pull keeps the verified copy.
    const again = fakeIo();
    expect(await main(['backbone', 'pull', 'dino-vits8', '--models', modelsDir, '--hub-url', hubUrl, '--json'], again.io)).toBe(0);
    expect(JSON.parse(again.stdout()).downloaded).toBe(false);

    // The pulled model runs through its descriptor (fixed 224 x 224 input; the tiny model's patch is 4).
    const f = fakeIo();
    const code = await main(['features', '--data', data, '--backbone', join(modelsDir, 'dino-vits8.onnx'), '--no-cache', '--json'], f.io);
    expect(code, f.stderr()).toBe(0);
    expect(JSON.parse(f.stdout()).featureShape).toBe('16x56x56');
  });

  it('explains a missing file on the hub and an unreachable hub', async () => {
    const missing = fakeIo();
    expect(await main(['backbone', 'pull', 'dino-vitb16', '--models', join(dir.path, 'x'), '--hub-url', hubUrl], missing.io)).toBe(1);
    expect(missing.stderr()).toMatch(/cannot download .*dino-vitb16.*HTTP 404/);
    const offline = fakeIo();
    // A loopback port that was just free: nothing listens there, so the connection is refused at once.
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    expect(await main(['backbone', 'pull', 'dino-vits16', '--models', join(dir.path, 'y'), '--hub-url', `http://127.0.0.1:${port}`], offline.io)).toBe(1);
    expect(offline.stderr()).toMatch(/cannot download .*ECONNREFUSED.*--hub-url/);
    expect(offline.stderr().trim().split('\n')).toHaveLength(1);
  });
});

describe('fuss participant list, revoke, rotate', () => {
  it('manage a federation\'s participants over HTTP', async () => {
    const { buildApp, openDatabase } = await import('@fuss/aggregator');
    const db = await openDatabase({ pgliteDir: 'memory://' });
    await db.migrate();
    const admin = 'cli-admin-token-0123456789';
    const app = await buildApp({ db, config: { adminToken: admin } });
    await app.listen({ port: 0, host: '127.0.0.1' });
    const server = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const env = { FUSS_SERVER: server, FUSS_ADMIN_TOKEN: admin };
      const run = async (args: string[]) => {
        const r = fakeIo(env);
        const code = await main(args, r.io);
        return { code, out: r.stdout(), err: r.stderr() };
      };
      const created = await run(['federation', 'create', '--name', 'cli', '--backbone', models.cnn, '--k', '3', '--rounds', '1', '--local-steps', '1', '--max-participants', '2', '--robust', 'krum:0', '--json']);
      expect(created.code, created.err).toBe(0);
      const federation = JSON.parse(created.out);
      expect(federation.robust).toBe('krum:0');
      const token = (await run(['participant', 'add', '--federation', federation.id, '--name', 'site-a'])).out.trim();
      const listed = await run(['participant', 'list', '--federation', federation.id, '--json']);
      const [participant] = JSON.parse(listed.out);
      expect(participant).toMatchObject({ name: 'site-a', enrolmentIndex: 0, revoked: false, roundsContributed: 0 });
      const rotated = await run(['participant', 'rotate', '--federation', federation.id, '--participant', participant.id]);
      expect(rotated.out.trim()).toMatch(/^fuss_p_/);
      expect(rotated.out.trim()).not.toBe(token);
      const revoked = await run(['participant', 'revoke', '--federation', federation.id, '--participant', participant.id]);
      expect(revoked.out).toMatch(/^revoked site-a/);
      expect((await run(['participant', 'list', '--federation', federation.id])).out).toMatch(/site-a.*revoked/);
      const unknown = await run(['participant', 'revoke', '--federation', federation.id, '--participant', '00000000-0000-4000-8000-000000000000']);
      expect(unknown.code).toBe(1);
      expect(unknown.err.trim().split('\n')).toHaveLength(1);
      expect(unknown.err).toMatch(/no participant/);
      const badRule = await run(['federation', 'create', '--name', 'x', '--backbone', models.cnn, '--k', '3', '--rounds', '1', '--local-steps', '1', '--max-participants', '2', '--robust', 'trimmed-mean:0.7']);
      expect(badRule.code).toBe(2);
      expect(badRule.err).toMatch(/beta must be in \[0, 0\.5\)/);

      // --preset paper replaces the defaults it names (explicit flags win); the mechanisms reach the federation.
      const createArgs = ['federation', 'create', '--name', 'p', '--backbone', models.cnn, '--k', '3', '--rounds', '1', '--local-steps', '1', '--max-participants', '2', '--json'];
      const paper = await run([...createArgs, '--preset', 'paper', '--regularizer', 'fedprox']);
      expect(paper.code, paper.err).toBe(0);
      expect(JSON.parse(paper.out)).toMatchObject({
        strategy: 'fedcc-kmeans', robust: 'none', modules: { weighted: true, head: true, centroids: true }, regularizer: 'fedprox',
        serverOptimizer: 'none', localOptimizer: 'reset', lrSchedule: 'constant', augment: 'none', selection: 'none',
      });
      const mechanisms = await run([...createArgs, '--modules', 'E,C', '--server-optimizer', 'fedavgm:0.5', '--local-optimizer', 'keep', '--lr-schedule', 'cosine', '--augment', 'flip', '--selection', 'loss:0.2:3']);
      expect(mechanisms.code, mechanisms.err).toBe(0);
      expect(JSON.parse(mechanisms.out)).toMatchObject({ modules: { weighted: false }, serverOptimizer: 'fedavgm:0.5:0.9', localOptimizer: 'keep', lrSchedule: 'cosine', augment: 'flip', selection: 'loss:0.2:3', selectedModelVersion: null });
      const noHead = await run([...createArgs, '--modules', 'C', '--server-optimizer', 'fedadam']);
      expect(noHead.code).toBe(2);
      expect(noHead.err).toMatch(/needs module E/);
      // The defaults: the measured configuration; the default server optimiser gives way without module E.
      const defaults = await run(createArgs);
      expect(defaults.code, defaults.err).toBe(0);
      expect(JSON.parse(defaults.out)).toMatchObject(FEDERATION_DEFAULTS);
      const defaultsNoHead = await run([...createArgs, '--modules', 'W,C']);
      expect(defaultsNoHead.code, defaultsNoHead.err).toBe(0);
      expect(JSON.parse(defaultsNoHead.out)).toMatchObject({ modules: { weighted: true, head: false, centroids: true }, serverOptimizer: 'none' });
    } finally {
      await app.close();
      await db.close();
    }
  });
});
