// Optional server-side validation (fuss server --eval-data DIR): a labelled dataset in the DESIGN
// layout on which every new global version (of federations on the server's backbone) is evaluated
// in a worker thread. A model's score is a function of its bytes and the dataset, so results are
// kept by model sha256 in one JSON-lines file per dataset, and survive restarts without a table.

import { Worker } from 'node:worker_threads';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { FussError, type DeviceChoice } from '@fuss/core';
import { stopWorker } from '../worker-stop.js';

export interface EvaluationWorkerData {
  datasetDir: string;
  backbonePath: string;
  device?: DeviceChoice;
  threads: number;
  cacheDir: string;
}

/** A model to evaluate, or the request to end (the evaluation in progress stops at its next image). */
export type EvaluationRequest = { kind: 'evaluate'; id: number; bytes: Uint8Array } | { kind: 'stop' };

export interface EvaluationResult {
  /** Percent, after Hungarian matching of clusters to classes (DESIGN "Evaluation"). */
  mIoU: number;
  pixelAccuracy: number;
  perClassIoU: Record<string, number | null>;
  images: number;
  seconds: number;
}

export type EvaluationReply =
  | { kind: 'ready'; dataset: { name: string; images: number; key: string }; backbone: { sha256: string; featureKey: string } }
  | { kind: 'log'; line: string }
  | { kind: 'fatal'; message: string }
  | { kind: 'done'; id: number; result: EvaluationResult }
  | { kind: 'failed'; id: number; message: string };

export interface StoredEvaluation extends Partial<EvaluationResult> {
  sha256: string;
  evaluatedAt: string;
  /** Why the model could not be evaluated (it is not tried again). */
  error?: string;
}

/** The worker entry: the compiled .js next to this file, or the .ts source through tsx (tests). */
function workerFile(): { file: URL; workerData: { entry?: string }; execArgv?: string[] } {
  if (import.meta.url.endsWith('.ts')) {
    return { file: new URL('../segmentation/ts-worker-bootstrap.mjs', import.meta.url), workerData: { entry: new URL('./evaluation-worker.ts', import.meta.url).href }, execArgv: ['--conditions=source'] };
  }
  return { file: new URL('./evaluation-worker.js', import.meta.url), workerData: {} };
}

export class Validator {
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: EvaluationResult) => void; reject: (e: Error) => void }>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly worker: Worker,
    readonly dataset: { name: string; images: number; key: string },
    readonly backbone: { sha256: string; featureKey: string },
    /** Evaluations by model sha256. */
    readonly results: Map<string, StoredEvaluation>,
    private readonly resultsFile: string,
  ) {}

  /** Opens the dataset and the backbone in a worker thread; fails with the reason when either is unusable. */
  static async start(options: { datasetDir: string; backbonePath: string; dir: string; device?: DeviceChoice; log?: (line: string) => void }): Promise<Validator> {
    const log = options.log ?? (() => undefined);
    await mkdir(options.dir, { recursive: true });
    const entry = workerFile();
    // One onnxruntime thread: validation must not take the cores of aggregation and /segment.
    const data: EvaluationWorkerData = { datasetDir: options.datasetDir, backbonePath: options.backbonePath, device: options.device, threads: 1, cacheDir: join(options.dir, 'features') };
    const worker = new Worker(entry.file, { workerData: { ...data, ...entry.workerData }, execArgv: entry.execArgv });
    const ready = await new Promise<Extract<EvaluationReply, { kind: 'ready' }>>((resolve, reject) => {
      worker.on('message', (message: EvaluationReply) => {
        if (message.kind === 'ready') resolve(message);
        else if (message.kind === 'fatal') reject(new FussError(`--eval-data ${options.datasetDir}: ${message.message}`));
        else if (message.kind === 'log') log(message.line);
      });
      worker.once('error', reject);
      worker.once('exit', (code) => reject(new Error(`the evaluation worker stopped (exit code ${code})`)));
    }).catch(async (err: Error) => {
      // Safe to terminate here: the worker has not started an evaluation (it is idle or has exited).
      await worker.terminate();
      throw err;
    });
    // The server's listener keeps the process alive, not this worker (a failed start must exit).
    worker.unref();
    const resultsFile = join(options.dir, `results-${ready.dataset.key}.jsonl`);
    const validator = new Validator(worker, ready.dataset, ready.backbone, await readResults(resultsFile), resultsFile);
    worker.on('message', (message: EvaluationReply) => validator.onMessage(message, log));
    worker.on('exit', (code) => {
      for (const [id, job] of validator.pending) {
        validator.pending.delete(id);
        job.reject(new Error(`the evaluation worker stopped (exit code ${code})`));
      }
    });
    return validator;
  }

  private onMessage(message: EvaluationReply, log: (line: string) => void) {
    if (message.kind === 'log') return log(message.line);
    if (message.kind !== 'done' && message.kind !== 'failed') return;
    const job = this.pending.get(message.id);
    if (!job) return;
    this.pending.delete(message.id);
    if (message.kind === 'done') job.resolve(message.result);
    else job.reject(new Error(message.message));
  }

  /** Evaluates a model (one at a time) and records the result, or the reason it failed. */
  async evaluate(sha256: string, bytes: Uint8Array): Promise<StoredEvaluation> {
    const run = async () => {
      const known = this.results.get(sha256);
      if (known) return known;
      let stored: StoredEvaluation;
      try {
        const result = await new Promise<EvaluationResult>((resolve, reject) => {
          const id = this.nextId++;
          this.pending.set(id, { resolve, reject });
          this.worker.postMessage({ kind: 'evaluate', id, bytes } satisfies EvaluationRequest);
        });
        stored = { sha256, evaluatedAt: new Date().toISOString(), ...result };
      } catch (err) {
        if (/worker stopped/.test((err as Error).message)) throw err;
        stored = { sha256, evaluatedAt: new Date().toISOString(), error: (err as Error).message };
      }
      this.results.set(sha256, stored);
      await appendFile(this.resultsFile, `${JSON.stringify(stored)}\n`);
      return stored;
    };
    const result = this.queue.then(run, run);
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Stops the worker; an evaluation in progress is dropped at its next image (and done again after a
   * restart). The worker ends itself (worker-stop.ts).
   */
  async close(): Promise<void> {
    await stopWorker(this.worker);
  }
}

/** The stored results; a line cut short by a crash is skipped (that model is evaluated again). */
async function readResults(path: string): Promise<Map<string, StoredEvaluation>> {
  const results = new Map<string, StoredEvaluation>();
  let text = '';
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  // A crash mid-write left a partial line: the next record starts on a line of its own.
  if (text.length > 0 && !text.endsWith('\n')) await appendFile(path, '\n');
  for (const line of text.split('\n')) {
    try {
      const entry = JSON.parse(line) as StoredEvaluation;
      if (typeof entry.sha256 === 'string') results.set(entry.sha256, entry);
    } catch {
      // An empty or truncated line.
    }
  }
  return results;
}
