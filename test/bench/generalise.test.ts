// bench/generalise/run.mjs end to end on tiny generated data shaped like CamVid (three sequences, the
// validation set one of them): both protocols, baselines, paper and mechanism rows, a combination;
// then a second invocation resumes from the run files, and --plan counts what is missing.

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFile, mkdir, readdir, readFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';
import { makeTempDir, makeTinyDataset, writeTinyBackbones } from '../../services/core/src/test-support/fixtures.js';

const SCRIPT = fileURLToPath(new URL('../../bench/generalise/run.mjs', import.meta.url));
const run = promisify(execFile);

let dir: { path: string; remove: () => Promise<void> };
beforeAll(async () => {
  dir = await makeTempDir('fuss-generalise-');
  const camvid = join(dir.path, 'assets', 'data', 'camvid');
  await makeTinyDataset(join(camvid, 'train'), { images: 12, width: 32, height: 24, domains: ['seqA', 'seqB', 'seqC'] });
  await makeTinyDataset(join(camvid, 'val'), { images: 3, width: 32, height: 24, domains: ['seqC'] });
  const models = await writeTinyBackbones(join(dir.path, 'tiny'));
  await mkdir(join(dir.path, 'assets', 'models'), { recursive: true });
  await copyFile(models.cnn, join(dir.path, 'assets', 'models', 'mobilenetv2-int8-features.onnx'));
});
afterAll(() => dir.remove());

describe('bench/generalise/run.mjs', () => {
  it('runs both protocols on tiny data, writes one JSON per run, reprints from them, and plans what is missing', async () => {
    const runs = join(dir.path, 'runs');
    const argv = (extra: string[]) => [
      SCRIPT, '--setups', 'seq', '--hold-out', 'seqA,seqC', '--seeds', '0', '--rounds', '2', '--local-steps', '2', '--combine', 'no-w,fedavgm',
      '--runs', runs, '--out', join(dir.path, 'out'), '--cache', join(dir.path, 'cache'), ...extra,
    ];
    const env = { ...process.env, FUSS_ASSETS: join(dir.path, 'assets') };
    const rows = ['local', 'centralized', 'fedavg-paper', 'selection', 'combined-no-w+fedavgm'];
    const first = await run(process.execPath, argv(['--rows', rows.join(',')]), { env, timeout: 300_000 });
    // 3 protocol cells (in-domain, unseen seqA, unseen seqC) x 5 rows x 1 seed.
    expect(first.stderr).toMatch(/15 runs planned, 0 done, 15 to run/);
    const files = (await readdir(runs)).sort();
    expect(files).toHaveLength(15);
    expect(files).toContain('unseen-seqA_seq_fedavg-paper_r2_s2_seed0.json');
    const record = JSON.parse(await readFile(join(runs, 'unseen-seqA_seq_selection_r2_s2_seed0.json'), 'utf8'));
    expect(record).toMatchObject({ protocol: 'unseen', heldOut: 'seqA', clients: 2, trainImages: 8, evaluationImages: 4, settings: { strategy: 'fedcc-kmeans', robust: 'none', selection: 'loss:0.1:2' } });
    expect(record.perRound).toHaveLength(2);
    expect(record.selection.selectedVersion).toBeGreaterThanOrEqual(0);
    const seqC = JSON.parse(await readFile(join(runs, 'unseen-seqC_seq_centralized_r2_s2_seed0.json'), 'utf8'));
    expect(seqC).toMatchObject({ trainImages: 8, evaluationImages: 3 }); // seqC is evaluated on val
    const combined = JSON.parse(await readFile(join(runs, 'in-domain_seq_combined-no-w+fedavgm_r2_s2_seed0.json'), 'utf8'));
    expect(combined.settings).toMatchObject({ modules: { weighted: false }, serverOptimizer: 'fedavgm:1:0.9' });
    expect(first.stdout).toMatch(/main: in-domain .*one participant per sequence \(3 participants\)/);
    expect(first.stdout).toMatch(/main: unseen seqA \(train 8 of seqB\+seqC, evaluate on 4 of seqA from train\)/);
    expect(first.stdout).toMatch(/unseen domain, mean over 2 held-out sequences/);
    expect(first.stdout).toMatch(/FedAvg \(paper\)/);

    // A second invocation computes nothing and prints the same tables.
    const second = await run(process.execPath, argv(['--rows', rows.join(',')]), { env, timeout: 300_000 });
    expect(second.stderr).toMatch(/15 runs planned, 15 done, 0 to run/);
    expect(second.stdout.replace(/written .*/, '')).toBe(first.stdout.replace(/written .*/, ''));
    const results = JSON.parse(await readFile(join(dir.path, 'out', 'results.json'), 'utf8'));
    expect(results.tables.map((t: { protocol: string }) => t.protocol)).toEqual(['in-domain', 'unseen-seqA', 'unseen-seqC', 'unseen-mean']);
    // The late swing of a 2-round run is the one change between its rounds.
    const fedavg = JSON.parse(await readFile(join(runs, 'unseen-seqA_seq_fedavg-paper_r2_s2_seed0.json'), 'utf8'));
    const fedavgLine = results.tables[1].lines.find((l: { id: string }) => l.id === 'fedavg-paper');
    expect(fedavgLine.lateSwing).toBeCloseTo(Math.abs(fedavg.perRound[1].mIoU - fedavg.perRound[0].mIoU), 10);
    expect(first.stdout).toMatch(/late swing/);

    // --report over a setup with no runs yet prints the recorded cells and skips the empty one.
    const report = await run(process.execPath, [...argv(['--report', '--rows', 'fedavg-paper']), '--setups', 'seq,blocks4'], { env, timeout: 300_000 });
    expect(report.stdout).toMatch(/main: unseen seqA .*one participant per sequence/);
    expect(report.stdout).not.toMatch(/4 participants/);

    // --plan: every main row, nothing run.
    const plan = await run(process.execPath, argv(['--plan']), { env, timeout: 300_000 });
    expect(plan.stderr).toMatch(/runs planned, 15 done, \d+ to run: about [\d.]+ CPU hours/);
    expect(plan.stdout).toMatch(/main +unseen-seqA +seq/);
    expect(await readdir(runs)).toHaveLength(15);

    // The tail-average row records the readout (the mean of the last 3 global models) after rounds 2.. and at the end.
    const tail = await run(process.execPath, [...argv(['--rows', 'tail-average']), '--protocols', 'unseen', '--hold-out', 'seqA'], { env, timeout: 300_000 });
    const tailRecord = JSON.parse(await readFile(join(runs, 'unseen-seqA_seq_tail-average_r2_s2_seed0.json'), 'utf8'));
    expect(tailRecord.settings).toMatchObject({ strategy: 'fedcc-kmeans', tailAverage: 3 });
    expect(tailRecord.tailAverage).toMatchObject({ rounds: 3, fromVersion: 1 });
    // Each record names the machine it ran on (bits differ across vector extensions).
    expect(tailRecord.machine).toMatchObject({ cores: expect.any(Number), node: process.version });
    expect(tailRecord.machine.cpu).toEqual(expect.any(String));
    expect(tailRecord.perRound[0].tailAverageMIoU).toBeUndefined();
    expect(tailRecord.perRound[1].tailAverageMIoU).toBe(tailRecord.tailAverage.mIoU);
    const tailLine = JSON.parse(await readFile(join(dir.path, 'out', 'results.json'), 'utf8')).tables[0].lines[0];
    expect(tailLine.tailAveraged).toBe(tailRecord.tailAverage.mIoU);
    expect(tailLine.tailVsBest).toBeCloseTo(tailRecord.tailAverage.mIoU - Math.max(...tailRecord.perRound.map((p: { mIoU: number }) => p.mIoU)), 10);
    expect(tail.stdout).toContain(`${tailRecord.tailAverage.mIoU.toFixed(2)} (`);

    // A row whose run with the readout added is recorded trains the very same model: its record is that run's,
    // without the readout (here checked against the row's own run, recorded above).
    const combine = ['--combine', 'no-w,fedavgm/no-w,fedavgm,tail-average', '--protocols', 'unseen', '--hold-out', 'seqA'];
    const withReadout = [...argv([]), ...combine, '--rows', 'combined-no-w+fedavgm+tail-average'];
    await run(process.execPath, withReadout, { env, timeout: 300_000 });
    const plainPath = join(runs, 'unseen-seqA_seq_combined-no-w+fedavgm_r2_s2_seed0.json');
    const plain = JSON.parse(await readFile(plainPath, 'utf8'));
    await rename(plainPath, join(dir.path, 'plain-run.json'));
    const copied = await run(process.execPath, [...argv([]), ...combine, '--rows', 'combined-no-w+fedavgm'], { env, timeout: 300_000 });
    expect(copied.stderr).toMatch(/the same training as unseen-seqA_seq_combined-no-w\+fedavgm\+tail-average_r2_s2_seed0/);
    const derived = JSON.parse(await readFile(plainPath, 'utf8'));
    expect(derived).toMatchObject({ row: plain.row, label: plain.label, settings: plain.settings, final: plain.final, perRound: plain.perRound });
    expect(derived.tailAverage).toBeUndefined();
    expect(derived.settings.tailAverage).toBeUndefined();
  });

  it('answers a mistake on the command line with one readable line and the usage, exit code 2', async () => {
    const env = { ...process.env, FUSS_ASSETS: join(dir.path, 'assets') };
    const fail = async (args: string[]) => {
      const error = await run(process.execPath, [SCRIPT, ...args], { env }).then(() => undefined, (e) => e);
      expect(error?.code).toBe(2);
      return String(error.stderr).split('\n');
    };
    expect((await fail(['--bogus']))[0]).toMatch(/Unknown option '--bogus'/);
    expect((await fail(['--setups', 'blocks7']))[0]).toBe('--setups: no setup "blocks7"; setups: seq, blocks4, blocks6, blocks18, dir18');
    expect((await fail(['--rows', 'nope']))[0]).toMatch(/^--rows: no row "nope"; rows: local, centralized/);
    expect((await fail(['--hold-out', 'seqX', '--plan']))[0]).toBe('--hold-out: "seqX" is not one of the training sequences: seqA, seqB, seqC');
    expect((await fail(['--tables', 'huge']))[1]).toMatch(/^usage: node bench\/generalise\/run.mjs/);
    const help = await run(process.execPath, [SCRIPT, '--help'], { env });
    expect(help.stdout).toMatch(/^usage: node bench\/generalise\/run.mjs/);
  });
});
