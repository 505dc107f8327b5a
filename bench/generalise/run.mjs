// Issue 16: does federation beat training alone on a domain no participant trained on? Two protocols
// on CamVid (or any dataset whose dataset.json names domains):
// - in-domain: train on camvid/train, evaluate on camvid/val (the committed Table 1/2 protocol; val is
//   sequence 0016E5, one of the training domains);
// - unseen:<SEQ>: leave sequence SEQ out (holdOutDomain): train on the other sequences' images and
//   evaluate on SEQ's (0016E5: camvid/val; the others: their camvid/train images, left out of training),
//   for each sequence in turn.
// Rows: local-only and centralized baselines, the paper's FedAvg / FedCC-KMeans / FedCC-Maximin
// (--preset paper settings), each mechanism of issue 16 alone on top of the paper's FedCC-KMeans, and
// their combination. Every round is evaluated, so the tables show the best round and the decay after it.
// Each run's JSON is written to bench/generalise/runs/ (commit them): the script resumes from them,
// so an interrupted run continues and a finished table reprints in seconds. Several processes can work
// through one plan side by side (each claims a run with a lock file beside its record), and a centralized
// run is recorded once: another setup whose participants' images, one group after the other, are the
// same in the same order (sequence blocks of any count) trains the very same model, so its record is
// copied with `sameRunAs`.
//
// Usage: USAGE below (--help prints it).
// --plan prints the runs still missing and an estimate of their CPU time, and runs nothing; --report
// prints the tables from the runs already recorded (missing seeds and rows left out), and runs nothing.
// FUSS_ASSETS points at another assets folder (data/camvid/{train,val}, models/mobilenetv2-int8-features.onnx).

import { isDeepStrictEqual, parseArgs } from 'node:util';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdirSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  Backbone, ConfigError, createEngine, datasetDomains, holdOutDomain, openDataset, PAPER_FEDERATION, partitionDataset, parsePartitionSpec, requireLabels, runBaseline, simulateFederation,
} from '@fuss/core';
import { machine, median, printTable, sharedAssets } from '../common.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const USAGE = `usage: node bench/generalise/run.mjs [--tables main|large|all] [--protocols in-domain,unseen]
  [--hold-out 0001TP,0006R0,0016E5] [--setups seq,blocks4,blocks6,blocks18,dir18] [--rows id,...] [--combine id,...[/id,...]]
  [--seeds 0,1,2] [--rounds 5] [--local-steps 100] [--plan] [--report] [--runs DIR] [--out DIR] [--cache DIR] [--threads N]
  [--seconds-per-step 0.125] [--seconds-per-eval-image 0.05] [--seconds-per-run 10]`;
const options = {
  tables: { type: 'string', default: 'main' },
  protocols: { type: 'string', default: 'in-domain,unseen' },
  'hold-out': { type: 'string' },
  setups: { type: 'string' },
  rows: { type: 'string' },
  combine: { type: 'string' },
  seeds: { type: 'string', default: '0,1,2' },
  rounds: { type: 'string', default: '5' },
  'local-steps': { type: 'string', default: '100' },
  plan: { type: 'boolean', default: false },
  report: { type: 'boolean', default: false },
  threads: { type: 'string', default: '0' },
  cache: { type: 'string', default: '.fuss/cache' },
  runs: { type: 'string', default: join(here, 'runs') },
  out: { type: 'string', default: join(here, 'out') },
  'seconds-per-step': { type: 'string', default: '0.125' },
  'seconds-per-eval-image': { type: 'string', default: '0.05' },
  'seconds-per-run': { type: 'string', default: '10' },
  help: { type: 'boolean', default: false },
};
/** A mistake on the command line: one readable line and the usage, exit code 2. */
function usageError(message) {
  console.error(`${message}\n${USAGE}`);
  process.exit(2);
}
let values;
try {
  ({ values } = parseArgs({ options }));
} catch (error) {
  usageError(error.message);
}
if (values.help) {
  console.log(USAGE);
  process.exit(0);
}
const ROUNDS = Number(values.rounds);
const STEPS = Number(values['local-steps']);
const seeds = values.seeds.split(',').map(Number);
const list = (text) => (text === undefined ? undefined : text.split(',').map((s) => s.trim()).filter(Boolean));
// The same budget in more, shorter rounds (at least one step a round).
const HALF = Math.max(1, Math.round(STEPS / 2));
const QUARTER = Math.max(1, Math.round(STEPS / 4));

// The paper's settings (`--preset paper` of fuss simulate); rows change what they name.
const E_C = { weighted: false, head: true, centroids: true };
const PAPER = PAPER_FEDERATION;

/** Rows: id (part of the run's file name; never rename), label, and the settings over PAPER. */
const ROWS = [
  { id: 'local', row: 'local-only (mean of participants)', baseline: 'local' },
  { id: 'centralized', row: 'centralized', baseline: 'centralized' },
  { id: 'fedavg-paper', row: 'FedAvg (paper)', settings: { strategy: 'fedavg' } },
  { id: 'fedcc-kmeans-paper', row: 'FedCC-KMeans (paper)', settings: {} },
  { id: 'fedcc-maximin-paper', row: 'FedCC-Maximin (paper)', settings: { strategy: 'fedcc-maximin' } },
  // Each mechanism alone, on top of the paper's FedCC-KMeans.
  { id: 'no-w', row: 'no size weights (E+C)', settings: { modules: E_C } },
  { id: 'rounds-x2', row: `${ROUNDS * 2} rounds x ${HALF} steps`, settings: {}, rounds: ROUNDS * 2, localSteps: HALF },
  { id: 'rounds-x4', row: `${ROUNDS * 4} rounds x ${QUARTER} steps`, settings: {}, rounds: ROUNDS * 4, localSteps: QUARTER },
  { id: 'fedavgm', row: 'server FedAvgM (lr 1, momentum 0.9)', settings: { serverOptimizer: 'fedavgm:1:0.9' } },
  // Momentum β makes round t's step (1 - β^t)/(1 - β) times the round's delta: by round 5, 4.1x at 0.9 and 1.9x at 0.5.
  { id: 'fedavgm-m05', row: 'server FedAvgM (lr 1, momentum 0.5)', settings: { serverOptimizer: 'fedavgm:1:0.5' } },
  { id: 'fedadam', row: 'server FedAdam (lr 0.01, tau 0.001)', settings: { serverOptimizer: 'fedadam:0.01:0.001:0.9:0.99' } },
  { id: 'adam-kept', row: 'Adam kept across rounds', settings: { localOptimizer: 'keep' } },
  { id: 'cosine', row: 'cosine learning rate over the rounds', settings: { lrSchedule: 'cosine' } },
  { id: 'kmeans-cosine', row: 'FedCC-KMeans on cosine-normalised centroids', settings: { strategy: 'fedcc-kmeans-cosine' } },
  { id: 'maximin-cosine', row: 'FedCC-Maximin on cosine-normalised centroids', settings: { strategy: 'fedcc-maximin-cosine' } },
  { id: 'flip', row: 'flipped views', settings: { augment: 'flip' } },
  { id: 'selection', row: 'model selection (held-out loss, patience 2)', settings: { selection: 'loss:0.1:2' } },
  // Does the model decay with more rounds, and does the selection rule stop it?
  { id: 'rounds-double', row: `${ROUNDS * 2} rounds x ${STEPS} steps (twice the budget)`, settings: {}, rounds: ROUNDS * 2 },
  { id: 'rounds-double-selection', row: `${ROUNDS * 2} rounds x ${STEPS} steps + model selection`, settings: { selection: 'loss:0.1:2' }, rounds: ROUNDS * 2 },
  // Readout only (training unchanged): the mean of the last 3 global models, against the round-to-round swing.
  { id: 'tail-average', row: 'readout: mean of the last 3 global models', settings: { tailAverage: 3 } },
];
const byId = new Map(ROWS.map((r) => [r.id, r]));
// Combinations: by default the one FEDERATION_DEFAULTS adopted (the best measured; bench/RESULTS.md);
// --combine ID,...[/ID,...] builds them from the named rows' settings instead (the first is the tables' default row).
const combinations = (values.combine ?? 'maximin-cosine,fedavgm').split('/').map((text) => list(text));
const combinationIds = combinations.map((combineIds) => {
  for (const id of combineIds) if (!byId.get(id)?.settings) usageError(`--combine: no mechanism row "${id}"; rows: ${ROWS.filter((r) => r.settings).map((r) => r.id).join(', ')}`);
  const id = `combined-${combineIds.join('+')}`;
  const first = (field) => combineIds.map((m) => byId.get(m)[field]).find(Boolean);
  ROWS.push({ id, row: `combined: ${combineIds.join(' + ')}`, settings: Object.assign({}, ...combineIds.map((m) => byId.get(m).settings)), rounds: first('rounds'), localSteps: first('localSteps') });
  byId.set(id, ROWS.at(-1));
  return id;
});
const combinedId = combinationIds[0];

// Setups: id, participants (from the number of training domains), partition.
const SETUPS = {
  seq: { label: 'one participant per sequence', clients: (domains) => domains, partition: 'domain' },
  blocks4: { label: '4 participants by sequence blocks', clients: () => 4, partition: 'domain-blocks' },
  blocks6: { label: '6 participants by sequence blocks', clients: () => 6, partition: 'domain-blocks' },
  blocks18: { label: '18 participants by sequence blocks', clients: () => 18, partition: 'domain-blocks' },
  dir18: { label: '18 participants, Dirichlet(0.5)', clients: () => 18, partition: 'dirichlet:0.5' },
};
const LARGE_ROWS = ['local', 'centralized', 'fedavg-paper', 'fedcc-kmeans-paper', 'fedcc-maximin-paper', combinedId];
const TABLES = {
  // The 3-participant tables of the issue: in-domain with one participant per sequence; unseen with
  // the two training sequences as 2 participants, or cut into 4.
  main: { 'in-domain': ['seq'], unseen: ['seq', 'blocks4'], rows: ROWS.map((r) => r.id) },
  // The paper's larger settings, with the paper rows, the baselines and the combination.
  large: { 'in-domain': ['blocks6', 'blocks18', 'dir18'], unseen: ['blocks6', 'blocks18', 'dir18'], rows: LARGE_ROWS },
};
for (const id of list(values.rows) ?? []) if (!byId.has(id)) usageError(`--rows: no row "${id}"; rows: ${[...byId.keys()].join(', ')}`);
const tableNames = values.tables === 'all' ? ['main', 'large'] : [values.tables];
for (const name of tableNames) if (!TABLES[name]) usageError(`--tables: main, large or all (got ${values.tables})`);
for (const id of list(values.setups) ?? []) if (!SETUPS[id]) usageError(`--setups: no setup "${id}"; setups: ${Object.keys(SETUPS).join(', ')}`);

const assets = sharedAssets();
const cacheDir = values.cache;
mkdirSync(values.runs, { recursive: true });
const train = await openDataset(assets.train);
const val = await openDataset(assets.val);
requireLabels(val);
const k = train.info.classes.length;
const domains = datasetDomains(train);
const heldOutDomains = list(values['hold-out']) ?? domains;
for (const domain of heldOutDomains) if (!domains.includes(domain)) usageError(`--hold-out: "${domain}" is not one of the training sequences: ${domains.join(', ')}`);

/** The protocol cells: in-domain once, unseen once per held-out sequence. */
function protocolCells() {
  const cells = [];
  const wanted = list(values.protocols);
  if (wanted.includes('in-domain')) cells.push({ id: 'in-domain', protocol: 'in-domain', label: `in-domain (train ${train.items.length}, evaluate on val ${val.items.length})`, train, evaluation: val, trainDomains: domains.length });
  if (wanted.includes('unseen')) {
    for (const domain of heldOutDomains) {
      const split = holdOutDomain(train, val, domain);
      cells.push({
        id: `unseen-${domain}`, protocol: 'unseen', heldOut: domain, train: split.train, evaluation: split.evaluation, trainDomains: domains.length - 1,
        label: `unseen ${domain} (train ${split.train.items.length} of ${datasetDomains(split.train).join('+')}, evaluate on ${split.evaluation.items.length} of ${domain} from ${split.evaluationFrom === 'evaluation' ? 'val' : 'train'})`,
      });
    }
  }
  return cells;
}

function plannedRuns() {
  const runs = [];
  const rowFilter = list(values.rows);
  const setupFilter = list(values.setups);
  for (const name of tableNames) {
    const table = TABLES[name];
    for (const cell of protocolCells()) {
      for (const setupId of table[cell.protocol] ?? []) {
        if (setupFilter && !setupFilter.includes(setupId)) continue;
        const setup = SETUPS[setupId];
        const clients = setup.clients(cell.trainDomains);
        // --rows picks any rows, also ones the table does not run by default (a mechanism on 6 participants).
        for (const rowId of rowFilter ?? table.rows) {
          const spec = byId.get(rowId);
          const rounds = spec.rounds ?? ROUNDS;
          const localSteps = spec.localSteps ?? STEPS;
          for (const seed of seeds) {
            const key = runKey(cell.id, setupId, spec.id, { rounds, localSteps, seed });
            runs.push({ table: name, cell, setupId, setup, clients, spec, rounds, localSteps, seed, key, path: runPath(key) });
          }
        }
      }
    }
  }
  // One run per key even when tables overlap.
  return [...new Map(runs.map((r) => [r.key, r])).values()];
}

/** Steps and evaluated images of a run, for the CPU estimate. */
function cost(run) {
  const budget = run.rounds * run.localSteps;
  const evalImages = run.cell.evaluation.items.length;
  if (run.spec.baseline === 'centralized') return { steps: budget, evaluations: evalImages };
  if (run.spec.baseline === 'local') return { steps: budget * run.clients, evaluations: evalImages * run.clients };
  const views = (run.spec.settings.augment ?? 'none') === 'none' ? 1 : 2;
  return { steps: budget * run.clients, evaluations: evalImages * run.rounds, extraFeatures: views > 1 ? run.cell.train.items.length : 0 };
}

const runs = plannedRuns();
const missing = runs.filter((r) => !existsSync(r.path));
const secondsPerStep = Number(values['seconds-per-step']);
const secondsPerEvalImage = Number(values['seconds-per-eval-image']);
const secondsPerRun = Number(values['seconds-per-run']);
// Estimates from bench/RESULTS.md's CamVid runs (2026-11-28: about 0.13 s per step on 2 cores), plus
// loading features and calibrating shifts per run, and the backbone once per new augmented view.
const estimate = (list) => list.reduce((s, r) => {
  const c = cost(r);
  return s + secondsPerRun + c.steps * secondsPerStep + c.evaluations * secondsPerEvalImage + (c.extraFeatures ?? 0) * 0.1;
}, 0);
console.error(`${runs.length} runs planned, ${runs.length - missing.length} done, ${missing.length} to run: about ${(estimate(missing) / 3600).toFixed(1)} CPU hours at ${secondsPerStep} s per training step, ${secondsPerEvalImage} s per evaluated image and ${secondsPerRun} s per run (on 2 cores; two --threads 1 processes side by side take about half of it in wall time)`);
if (values.plan) {
  const byCell = new Map();
  for (const r of missing) {
    const id = `${r.table} | ${r.cell.id} | ${r.setupId}`;
    const entry = byCell.get(id) ?? { table: r.table, protocol: r.cell.id, setup: r.setupId, runs: 0, seconds: 0 };
    entry.runs++;
    entry.seconds += estimate([r]);
    byCell.set(id, entry);
  }
  if (byCell.size) printTable([...byCell.values()].map(({ seconds, ...e }) => ({ ...e, 'CPU hours': (seconds / 3600).toFixed(2) })));
  process.exit(0);
}

const backbone = values.report ? undefined : await Backbone.open(assets.mobilenet);
// --threads 1 lets two of these processes share 2 cores: a third of a step is single-threaded JavaScript.
const engine = values.report ? undefined : await createEngine('onnx', { threads: Number(values.threads) || undefined, log: (l) => console.error(l) });

/** A run's record name: cell, setup, row, budget and seed (its JSON file in --runs is `<key>.json`). */
function runKey(cellId, setupId, rowId, { rounds, localSteps, seed }) {
  return [cellId, setupId, rowId, `r${rounds}`, `s${localSteps}`, `seed${seed}`].join('_');
}

function runPath(key) {
  return join(values.runs, `${key}.json`);
}

/** The images of a run's centralized trainer, in its order: the participants' groups one after the other. */
async function centralizedOrder(run, setupId) {
  const setup = SETUPS[setupId];
  const groups = await partitionDataset(run.cell.train, setup.clients(run.cell.trainDomains), parsePartitionSpec(setup.partition), run.seed);
  return createHash('sha256').update(groups.flat().map((item) => item.id).join('\n')).digest('hex');
}

/**
 * A recorded centralized run of another setup that trained on the same images in the same order (same
 * cell, seed and budget): centralized training does not depend on the split beyond the order it sees the
 * images in, so such a run is this one (sequence blocks keep the dataset's order for any count).
 */
async function sameCentralizedRun(run) {
  if (run.spec.baseline !== 'centralized') return undefined;
  let order;
  for (const setupId of Object.keys(SETUPS)) {
    if (setupId === run.setupId) continue;
    const key = runKey(run.cell.id, setupId, run.spec.id, run);
    const path = runPath(key);
    if (!existsSync(path)) continue;
    order ??= await centralizedOrder(run, run.setupId);
    if (order !== (await centralizedOrder(run, setupId))) continue;
    const record = JSON.parse(readFileSync(path, 'utf8'));
    return { ...record, key: run.key, setup: run.setupId, partition: run.setup.partition, clients: run.clients, sameRunAs: record.sameRunAs ?? key };
  }
  return undefined;
}

/**
 * A recorded run of this row with the tail-averaged readout added (row `<id>+tail-average`, same cell, setup,
 * seed and budget): the readout only evaluates an extra model, training is the same bit for bit (a simulator
 * test checks it), so that run's plain model is this row's; its record is copied without the readout.
 */
function sameTrainingWithReadout(run) {
  if (run.spec.baseline || run.spec.settings?.tailAverage) return undefined;
  const key = runKey(run.cell.id, run.setupId, `${run.spec.id}+tail-average`, run);
  const path = runPath(key);
  if (!existsSync(path)) return undefined;
  const { tailAverage, ...record } = JSON.parse(readFileSync(path, 'utf8'));
  const { tailAverage: readoutRounds, ...settings } = record.settings;
  // Only a readout of the very same training: same settings once the readout's own is taken away (compared as
  // recorded, i.e. through JSON, which drops unset fields).
  const expected = JSON.parse(JSON.stringify({ ...PAPER, ...run.spec.settings }));
  if (!tailAverage || !readoutRounds || !isDeepStrictEqual(settings, expected)) return undefined;
  return {
    ...record, key: run.key, row: run.spec.id, label: run.spec.row, settings,
    perRound: record.perRound?.map(({ tailAverageMIoU: _readout, ...round }) => round), sameRunAs: record.sameRunAs ?? key,
  };
}

/**
 * Claims a run for this process with a lock file beside its record (`wx`: only one process creates it),
 * so several processes can work through one plan; a lock whose process is gone is taken over.
 * @returns the release function, or undefined when another live process holds the run
 */
function claim(run) {
  const lockPath = `${run.path}.lock`;
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(lockPath, 'wx');
      writeFileSync(fd, `${process.pid}\n`);
      closeSync(fd);
      return () => rmSync(lockPath, { force: true });
    } catch (err) {
      if (err.code !== 'EEXIST') throw err;
      const holder = Number(readFileSync(lockPath, 'utf8'));
      try {
        process.kill(holder, 0);
        return undefined; // alive: its run
      } catch {
        rmSync(lockPath, { force: true }); // stale: the process that wrote it has ended
      }
    }
  }
  return undefined;
}

async function runOnce(run) {
  if (existsSync(run.path)) return JSON.parse(readFileSync(run.path, 'utf8'));
  const release = claim(run);
  if (!release) {
    console.error(`${run.key}: running in another process (${run.path}.lock)`);
    return undefined;
  }
  try {
    // The record may have landed between the check above and the claim.
    return existsSync(run.path) ? JSON.parse(readFileSync(run.path, 'utf8')) : await runUnclaimed(run);
  } finally {
    release();
  }
}

async function runUnclaimed(run) {
  const same = (await sameCentralizedRun(run)) ?? sameTrainingWithReadout(run);
  if (same) {
    writeFileSync(run.path, `${JSON.stringify(same, null, 2)}\n`);
    console.error(`${run.cell.id} | ${run.setupId} | ${run.spec.row} | seed ${run.seed}: the same training as ${same.sameRunAs} (mIoU ${same.final?.mIoU.toFixed(2)})`);
    return same;
  }
  const { cell, spec, seed } = run;
  const settings = { ...PAPER, ...(spec.settings ?? {}) };
  const options = {
    clients: run.clients, partition: parsePartitionSpec(run.setup.partition), regularizerScope: 'nonlinear', rounds: run.rounds, localSteps: run.localSteps, k, seed, cacheDir,
    evalEvery: 1, ...settings,
  };
  const started = performance.now();
  let result;
  try {
    result = spec.baseline ? await runBaseline(spec.baseline, cell.train, cell.evaluation, backbone, engine, options) : await simulateFederation(cell.train, cell.evaluation, backbone, engine, options);
  } catch (err) {
    // An impossible setting (e.g. a Dirichlet draw that leaves a participant empty) is recorded as such.
    if (!(err instanceof ConfigError)) throw err;
    result = { error: err.message };
  }
  const record = {
    key: run.key, protocol: cell.protocol, heldOut: cell.heldOut ?? null, setup: run.setupId, partition: run.setup.partition, clients: run.clients, row: spec.id, label: spec.row, seed,
    rounds: run.rounds, localSteps: run.localSteps, settings: spec.baseline ? { baseline: spec.baseline, augment: settings.augment, lrSchedule: settings.lrSchedule } : settings,
    trainImages: cell.train.items.length, evaluationImages: cell.evaluation.items.length,
    ...(result.error ? { error: result.error } : {
      final: result.final ? { mIoU: result.final.mIoU, pixelAccuracy: result.final.pixelAccuracy } : null,
      perRound: result.rounds?.map((r) => ({
        round: r.round, mIoU: r.metrics?.mIoU ?? null, startModelScore: r.score?.value ?? null, entropy: r.meanEntropy, loss: r.meanLoss, updateAgreement: r.updateAgreement ?? null,
        ...(r.tailAverage ? { tailAverageMIoU: r.tailAverage.metrics.mIoU } : {}),
      })),
      ...(result.tailAverage ? { tailAverage: { rounds: result.tailAverage.rounds, fromVersion: result.tailAverage.fromVersion, mIoU: result.tailAverage.metrics?.mIoU ?? null } } : {}),
      selection: result.selection ? { selectedVersion: result.selection.selectedVersion, stoppedAfterRound: result.selection.stoppedAfterRound ?? null, mIoU: result.selection.metrics?.mIoU ?? null } : null,
      perClient: result.runs?.map((r) => ({ client: r.clientId, images: r.images, mIoU: r.metrics?.mIoU ?? null })),
      participants: result.partition?.map((p) => p.images),
    }),
    wallSeconds: (performance.now() - started) / 1000,
    date: new Date().toISOString(),
    // Runs on CPUs with other vector extensions can differ in the last bits, and 18-participant runs then by points.
    machine: machine(),
  };
  writeFileSync(run.path, `${JSON.stringify(record, null, 2)}\n`);
  console.error(`${cell.id} | ${run.setupId} | ${spec.row} | seed ${seed}: ${record.error ? `n/a (${record.error})` : `mIoU ${record.final?.mIoU.toFixed(2)}`} (${record.wallSeconds.toFixed(0)}s)`);
  return record;
}

const records = new Map();
for (const run of runs) {
  if (values.report && !existsSync(run.path)) continue;
  const record = await runOnce(run);
  if (record) records.set(run.key, record);
}
await engine?.dispose();
await backbone?.close();

const fmt = (v) => (v === undefined || v === null || Number.isNaN(v) ? '-' : v.toFixed(2));
const medianOf = (list) => (list.length ? median(list) : undefined);

/** A run's mIoU after each round, or undefined when a round has no score. */
function roundCurve(record) {
  const curve = (record.perRound ?? []).map((p) => p.mIoU);
  return curve.every((v) => typeof v === 'number') ? curve : undefined;
}

/** The seeds' median mIoU after each round, or undefined when the seeds ran different numbers of rounds. */
function medianCurve(records) {
  const curves = records.map(roundCurve);
  const rounds = curves[0]?.length ?? 0;
  if (rounds === 0 || curves.some((c) => c === undefined || c.length !== rounds)) return undefined;
  return Array.from({ length: rounds }, (_, round) => median(curves.map((c) => c[round])));
}

/**
 * The final round against the best round of the seeds' median curve (medianCurve: the median over seeds of each
 * round's mIoU). Each seed's own best round is the largest of its noisy evaluations, so "final - best"
 * per seed reads evaluation noise as decay; the median curve's best round is far less biased that way.
 * Undefined when the seeds ran different numbers of rounds (a selection rule stopped one early).
 */
function curveDecay(curve) {
  return curve === undefined ? undefined : curve.at(-1) - Math.max(...curve);
}

/**
 * How much a run's score still moves late: the mean absolute change of mIoU between consecutive rounds over
 * the second half of the rounds (rounds 3-5 of 5). A curve that zig-zags there can end far from its best
 * round by chance, a decaying one by trend; "final - best" alone does not tell them apart.
 */
function lateSwing(record) {
  const curve = roundCurve(record);
  if (curve === undefined || curve.length < 2) return undefined;
  const changes = [];
  for (let round = Math.ceil(curve.length / 2); round < curve.length; round++) changes.push(Math.abs(curve[round] - curve[round - 1]));
  return changes.reduce((a, b) => a + b, 0) / changes.length;
}

/** One line of a table: a row's medians over seeds in one protocol cell and setup. */
function summarise(group, references) {
  const ok = group.filter((r) => !r.error && r.final);
  if (ok.length === 0) return { error: group[0]?.error ?? 'no runs' };
  const finals = ok.map((r) => r.final.mIoU);
  const bests = ok.map((r) => Math.max(...(r.perRound ?? []).map((p) => p.mIoU ?? -Infinity), r.final.mIoU));
  const selected = ok.map((r) => r.selection?.mIoU).filter((v) => typeof v === 'number');
  const tailAveraged = medianOf(ok.map((r) => r.tailAverage?.mIoU).filter((v) => typeof v === 'number'));
  const curve = medianCurve(ok);
  const final = median(finals);
  return {
    seeds: ok.map((r) => r.seed).join(','),
    final,
    min: Math.min(...finals),
    max: Math.max(...finals),
    best: median(bests),
    decay: median(ok.map((r, i) => finals[i] - bests[i])),
    curveDecay: curveDecay(curve),
    lateSwing: medianOf(ok.map(lateSwing).filter((v) => v !== undefined)),
    selected: medianOf(selected),
    // The tail-averaged readout (a row with tailAverage), and it against the best round of the plain model's median curve.
    tailAveraged,
    tailVsBest: tailAveraged === undefined || curve === undefined ? undefined : tailAveraged - Math.max(...curve),
    stopped: ok.filter((r) => r.selection?.stoppedAfterRound).length,
    vsCentralized: references.centralized === undefined ? undefined : final - references.centralized,
    // Paired by seed: mechanism rows may have fewer seeds than the paper row they change.
    vsPaper: medianOf(ok.filter((r) => references.paperBySeed.has(r.seed)).map((r) => r.final.mIoU - references.paperBySeed.get(r.seed))),
    vsLocal: references.local === undefined ? undefined : final - references.local,
    wall: median(ok.map((r) => r.wallSeconds)),
  };
}

const tables = [];
const keyOf = (run) => `${run.table}|${run.cell.id}|${run.setupId}`;
const groups = new Map();
for (const run of runs) {
  const id = keyOf(run);
  if (!groups.has(id)) groups.set(id, { table: run.table, cell: run.cell, setupId: run.setupId, rows: new Map() });
  const rows = groups.get(id).rows;
  const record = records.get(run.key);
  if (!record) continue;
  if (!rows.has(run.spec.id)) rows.set(run.spec.id, { spec: run.spec, records: [] });
  rows.get(run.spec.id).records.push(record);
}
for (const group of groups.values()) {
  if (group.rows.size === 0) continue; // nothing recorded yet for this cell and setup (a --report before its runs)
  const finalOf = (id) => {
    const entry = group.rows.get(id);
    return entry ? medianOf(entry.records.filter((r) => !r.error && r.final).map((r) => r.final.mIoU)) : undefined;
  };
  const paperRecords = group.rows.get('fedcc-kmeans-paper')?.records.filter((r) => !r.error && r.final) ?? [];
  const references = { centralized: finalOf('centralized'), local: finalOf('local'), paperBySeed: new Map(paperRecords.map((r) => [r.seed, r.final.mIoU])) };
  const lines = [...group.rows.values()].map(({ spec, records: list }) => ({ id: spec.id, row: spec.row, ...summarise(list, references) }));
  console.log(`\n${group.table}: ${group.cell.label}; ${SETUPS[group.setupId].label} (${group.rows.values().next().value.records[0]?.clients ?? '?'} participants)`);
  printTable(lines.map((l) => (l.error ? { row: l.row, 'final mIoU (median)': `n/a: ${l.error}` } : {
    row: l.row, seeds: l.seeds, 'final mIoU (median)': fmt(l.final), 'min..max': `${fmt(l.min)}..${fmt(l.max)}`, 'best round': fmt(l.best), 'final - best': fmt(l.decay), 'final - best of median curve': fmt(l.curveDecay),
    'late swing': fmt(l.lateSwing), 'tail-averaged (- best of median curve)': l.tailAveraged === undefined ? '' : `${fmt(l.tailAveraged)} (${fmt(l.tailVsBest)})`, selected: l.selected === undefined ? '' : `${fmt(l.selected)}${l.stopped ? ` (${l.stopped} stopped early)` : ''}`, 'vs centralized': fmt(l.vsCentralized), 'vs local': fmt(l.vsLocal), 'vs FedCC-KMeans paper, same seeds': fmt(l.vsPaper), 'wall s': fmt(l.wall),
  })));
  tables.push({ table: group.table, protocol: group.cell.id, setup: group.setupId, lines });
}

// The unseen protocol over its held-out sequences: the mean of each row's medians.
const unseen = tables.filter((t) => t.protocol.startsWith('unseen-'));
for (const name of tableNames) {
  for (const setupId of new Set(unseen.filter((t) => t.table === name).map((t) => t.setup))) {
    const cells = unseen.filter((t) => t.table === name && t.setup === setupId);
    const rowIds = [...new Set(cells.flatMap((t) => t.lines.map((l) => l.id)))];
    const mean = (values) => (values.length === cells.length && values.every((v) => typeof v === 'number') ? values.reduce((a, b) => a + b, 0) / values.length : undefined);
    const lines = rowIds.map((id) => {
      const per = cells.map((t) => t.lines.find((l) => l.id === id) ?? {});
      return {
        row: per.find((l) => l.row)?.row ?? id,
        ...Object.fromEntries(cells.map((t, i) => [t.protocol.replace('unseen-', 'held out '), fmt(per[i].final)])),
        mean: fmt(mean(per.map((l) => l.final))), 'mean vs centralized': fmt(mean(per.map((l) => l.vsCentralized))), 'mean vs local': fmt(mean(per.map((l) => l.vsLocal))),
        'mean final - best': fmt(mean(per.map((l) => l.decay))),
        'mean final - best of median curve': fmt(mean(per.map((l) => l.curveDecay))),
        'mean late swing': fmt(mean(per.map((l) => l.lateSwing))),
        ...(per.some((l) => l.tailAveraged !== undefined) ? { 'mean tail-averaged (- best of median curve)': `${fmt(mean(per.map((l) => l.tailAveraged)))} (${fmt(mean(per.map((l) => l.tailVsBest)))})` } : {}),
        'mean vs FedCC-KMeans paper, same seeds': fmt(mean(per.map((l) => l.vsPaper))),
        seeds: [...new Set(per.map((l) => l.seeds ?? '-'))].join(' / '),
      };
    });
    console.log(`\n${name}: unseen domain, mean over ${cells.length} held-out sequences; ${SETUPS[setupId].label}`);
    printTable(lines);
    tables.push({ table: name, protocol: 'unseen-mean', setup: setupId, lines });
  }
}

mkdirSync(values.out, { recursive: true });
const resultsPath = join(resolve(values.out), 'results.json');
writeFileSync(resultsPath, `${JSON.stringify({ date: new Date().toISOString(), machine: machine(), rounds: ROUNDS, localSteps: STEPS, seeds, combine: combinations, tables }, null, 2)}\n`);
console.log(`\nwritten ${resultsPath}`);
