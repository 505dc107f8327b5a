// `fuss simulate --over-http`: the same federation as the in-process simulator, run through the real
// system. It starts `fuss server` on loopback (embedded database in the work folder), creates the
// federation and enrols the participants over the admin API, gives each participant its share of the
// data as a folder of its own, and runs one `fuss join` process per participant. After the last round
// it downloads the global model of every evaluated round and scores it on the evaluation set.
//
// Participants are enrolled in partition order, so participant i has enrolment index i and derives the
// same seeds as simulated participant i; with equal settings the final model matches the in-process run.

import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { appendFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import type { Backbone, Dataset, PartitionSpec, TrainingEngine } from '@fuss/core';
import type { RoundSummary } from '@fuss/client';
import type { CliIo } from '../io.js';

const BIN = fileURLToPath(new URL('../../bin/fuss.js', import.meta.url));

export interface OverHttpSettings {
  clients: number;
  partition: PartitionSpec;
  strategy: string;
  /** Robust aggregation rule of the federation. */
  robust?: string;
  maxSamples?: number;
  modules: { weighted: boolean; head: boolean; centroids: boolean };
  regularizer: 'none' | 'fedprox' | 'moon';
  regularizerScope: 'nonlinear' | 'head';
  /** The mechanisms of issue 16, in canonical text form (defaults: the paper's). */
  serverOptimizer?: string;
  localOptimizer?: 'reset' | 'keep';
  lrSchedule?: 'constant' | 'cosine';
  augment?: string;
  selection?: string;
  rounds: number;
  localSteps: number;
  k: number;
  seed: number;
  evalEvery: number;
  cacheDir?: string;
  /** onnxruntime threads per participant process (0: cores / participants). */
  threads: number;
  engine: string;
  /** Execution device each participant process uses (resolved by the simulator, so they agree). */
  device: string;
  backbonePath: string;
  databaseUrl?: string;
  out?: string;
}

export interface OverHttpResult {
  partition: { clientId: string; images: number }[];
  rounds: {
    round: number; mIoU?: number; pixelAccuracy?: number; metrics?: import('@fuss/core').SegmentationMetrics; aggregationSeconds: number; roundSeconds: number;
    /** With a selection rule: the server's score of the round's starting model. */
    score?: { version: number; value?: number };
  }[];
  final?: import('@fuss/core').SegmentationMetrics;
  global: { head: import('@fuss/core').HeadParams; centroids: Float32Array };
  participants: { clientId: string; rounds: RoundSummary[] }[];
  /** With a selection rule: the version the server selected, and its metrics. */
  selection?: { selectedVersion: number; stoppedAfterRound?: number; metrics?: import('@fuss/core').SegmentationMetrics };
  timing: { wallSeconds: number; participantComputeSeconds: number; participantHttpSeconds: number; serverAggregationSeconds: number; evaluateSeconds: number };
}

interface Running {
  child: ChildProcess;
  output: () => string;
  exited: Promise<number | null>;
}

function run(args: string[], env: NodeJS.ProcessEnv, onStdoutLine?: (line: string) => void): Running {
  const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  let pending = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) if (line.trim()) onStdoutLine?.(line);
  });
  child.stderr!.on('data', (chunk: Buffer) => {
    output += chunk.toString();
    if (output.length > 200_000) output = output.slice(-100_000);
  });
  const exited = new Promise<number | null>((resolvePromise) => child.once('exit', (code) => resolvePromise(code)));
  return { child, output: () => output, exited };
}

function lastLines(text: string, count = 5): string {
  return text.trim().split('\n').slice(-count).join(' | ');
}

export async function simulateOverHttp(
  train: Dataset,
  evaluation: Dataset | undefined,
  backbone: Backbone,
  engine: TrainingEngine,
  settings: OverHttpSettings,
  io: CliIo,
): Promise<OverHttpResult> {
  const core = await import('@fuss/core');
  const { FussApi } = await import('@fuss/client');
  const log = (line: string) => io.stderr(`${line}\n`);
  const started = performance.now();
  const work = settings.out ? resolve(settings.out, 'over-http') : await mkdtemp(join(tmpdir(), 'fuss-over-http-'));
  await rm(work, { recursive: true, force: true });
  await mkdir(work, { recursive: true });
  const cacheDir = settings.cacheDir ? resolve(settings.cacheDir) : join(work, 'cache');
  const children: Running[] = [];
  try {
    // Each participant's share of the data, as a dataset folder of its own (links, no copies).
    const groups = await core.partitionDataset(train, settings.clients, settings.partition, settings.seed);
    const folders: string[] = [];
    for (const [i, group] of groups.entries()) {
      const folder = join(work, 'participants', core.participantClientId(i));
      await mkdir(join(folder, 'images'), { recursive: true });
      for (const item of group) await symlink(resolve(item.imagePath), join(folder, 'images', basename(item.imagePath)));
      folders.push(folder);
    }

    // The server, on loopback, with its own database.
    const adminToken = `sim-${randomBytes(16).toString('hex')}`;
    const server = run(['server', '--port', '0', '--host', '127.0.0.1', '--db-dir', join(work, 'db'), '--backbone', settings.backbonePath], {
      FUSS_ADMIN_TOKEN: adminToken,
      DATABASE_URL: settings.databaseUrl ?? '',
    });
    children.push(server);
    const url = await new Promise<string>((resolvePromise, reject) => {
      const timer = setInterval(() => {
        const match = /listening on (http:\/\/\S+)/.exec(server.output());
        if (match) {
          clearInterval(timer);
          resolvePromise(match[1]);
        }
      }, 50);
      void server.exited.then((code) => {
        clearInterval(timer);
        reject(new Error(`the server exited with ${code} before listening: ${lastLines(server.output())}`));
      });
    });
    log(`server listening on ${url} (work folder ${work})`);

    // The federation and its participants, in partition order (enrolment index = participant index).
    const api = new FussApi({ baseUrl: url, token: adminToken });
    const descriptor = backbone.descriptor;
    const federation = await api.createFederation({
      name: `simulation-${Date.now()}`,
      backbone: { id: descriptor.id, sha256: descriptor.sha256, featureKey: core.featureConfigKey(descriptor), channels: await backbone.featureChannels() },
      codeDim: core.TRAINING_DEFAULTS.codeDim,
      k: settings.k,
      strategy: settings.strategy as never,
      robust: settings.robust,
      maxSamples: settings.maxSamples,
      modules: settings.modules,
      regularizer: settings.regularizer,
      regularizerScope: settings.regularizerScope,
      serverOptimizer: settings.serverOptimizer,
      localOptimizer: settings.localOptimizer,
      lrSchedule: settings.lrSchedule,
      augment: settings.augment,
      selection: settings.selection,
      rounds: settings.rounds,
      localSteps: settings.localSteps,
      minParticipants: settings.clients,
      maxParticipants: settings.clients,
      roundDeadlineSeconds: 7 * 24 * 3600,
      deadlinePolicy: 'extend',
      seed: settings.seed,
    });
    const tokens: string[] = [];
    for (let i = 0; i < settings.clients; i++) tokens.push((await api.addParticipant(federation.id, core.participantClientId(i))).token);

    // One `fuss join` process per participant.
    const threads = settings.threads > 0 ? settings.threads : Math.max(1, Math.floor(availableParallelism() / settings.clients));
    const summaries: RoundSummary[][] = groups.map(() => []);
    const participants = tokens.map((token, i) => {
      const running = run(
        ['join', '--server', url, '--data', folders[i], '--backbone', settings.backbonePath, '--cache', cacheDir, '--engine', settings.engine, '--device', settings.device, '--threads', String(threads), '--json'],
        { FUSS_TOKEN: token },
        (line) => {
          const summary = JSON.parse(line) as RoundSummary;
          summaries[i].push(summary);
          log(`${core.participantClientId(i)}: round ${summary.round} uploaded (${summary.steps} steps, loss ${summary.loss?.last.toFixed(4) ?? '-'}, ${summary.seconds.total.toFixed(1)}s)`);
        },
      );
      children.push(running);
      return running;
    });
    const codes = await Promise.all(participants.map((p) => p.exited));
    codes.forEach((code, i) => {
      if (code !== 0) throw new Error(`participant ${core.participantClientId(i)} exited with ${code}: ${lastLines(participants[i].output())}`);
    });

    // Evaluate the global model of the evaluated rounds (a selection rule may have finished the federation early).
    const history = await api.roundHistory(federation.id);
    const lastRound = history.rounds.length;
    const evaluateStarted = performance.now();
    const rounds: OverHttpResult['rounds'] = [];
    let global: OverHttpResult['global'] | undefined;
    for (const record of history.rounds) {
      if (record.state !== 'closed') throw new Error(`round ${record.number} ended ${record.state}: ${record.failureReason ?? ''}`);
      const version = record.number; // no failed rounds, so round n made version n
      const evaluateNow = evaluation !== undefined && (record.number === lastRound || record.number % settings.evalEvery === 0);
      let metrics;
      if (evaluateNow || record.number === lastRound || settings.out) {
        const bytes = await api.downloadModel(federation.id, version);
        if (settings.out) await writeFile(join(settings.out, `global-round-${record.number}.safetensors`), bytes);
        const model = core.decodeModel(bytes);
        if (record.number === lastRound) global = { head: model.head, centroids: model.centroids };
        if (evaluateNow) metrics = await core.evaluateModel(evaluation!, backbone, engine, [{ head: model.head, centroids: model.centroids }], { k: settings.k, cacheDir: settings.cacheDir });
      }
      const aggregationSeconds = Number((record.metrics as { aggregationSeconds?: number } | null)?.aggregationSeconds ?? 0);
      const roundSeconds = record.closedAt ? (Date.parse(record.closedAt) - Date.parse(record.openedAt)) / 1000 : 0;
      const selected = (record.metrics as { selection?: { version: number; score?: number } } | null)?.selection;
      const score = selected ? { version: selected.version, value: selected.score } : undefined;
      rounds.push({ round: record.number, mIoU: metrics?.mIoU, pixelAccuracy: metrics?.pixelAccuracy, metrics, aggregationSeconds, roundSeconds, ...(score ? { score } : {}) });
      if (settings.out) await appendFile(join(settings.out, 'rounds.jsonl'), `${JSON.stringify({ round: record.number, mIoU: metrics?.mIoU, pixelAccuracy: metrics?.pixelAccuracy, aggregationSeconds, roundSeconds })}\n`);
    }
    let selection: OverHttpResult['selection'];
    const finished = await api.getFederation(federation.id);
    if (finished.selectedModelVersion !== null && finished.selectedModelVersion !== undefined) {
      const selectedVersion = finished.selectedModelVersion;
      let metrics = rounds[selectedVersion - 1]?.metrics;
      if (!metrics && evaluation) {
        const model = core.decodeModel(await api.downloadModel(federation.id, selectedVersion));
        metrics = await core.evaluateModel(evaluation, backbone, engine, [{ head: model.head, centroids: model.centroids }], { k: settings.k, cacheDir: settings.cacheDir });
      }
      selection = { selectedVersion, ...(lastRound < settings.rounds ? { stoppedAfterRound: lastRound } : {}), ...(metrics ? { metrics } : {}) };
    }
    const evaluateSeconds = (performance.now() - evaluateStarted) / 1000;
    await api.close();

    const perParticipant = (pick: (s: RoundSummary) => number) => summaries.reduce((sum, list) => sum + list.reduce((s, r) => s + pick(r), 0), 0) / settings.clients;
    return {
      partition: groups.map((group, i) => ({ clientId: core.participantClientId(i), images: group.length })),
      rounds,
      final: rounds.at(-1)?.metrics,
      global: global!,
      participants: summaries.map((list, i) => ({ clientId: core.participantClientId(i), rounds: list })),
      ...(selection ? { selection } : {}),
      timing: {
        wallSeconds: (performance.now() - started) / 1000,
        participantComputeSeconds: perParticipant((s) => s.seconds.features + s.seconds.train),
        participantHttpSeconds: perParticipant((s) => s.seconds.download + s.seconds.upload),
        serverAggregationSeconds: rounds.reduce((s, r) => s + r.aggregationSeconds, 0),
        evaluateSeconds,
      },
    };
  } finally {
    for (const running of children.reverse()) {
      if (running.child.exitCode === null && running.child.signalCode === null) {
        running.child.kill('SIGTERM');
        await running.exited;
      }
    }
    if (!settings.out) await rm(work, { recursive: true, force: true });
  }
}
