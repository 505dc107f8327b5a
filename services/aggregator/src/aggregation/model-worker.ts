// Model computations off the event loop: one worker thread runs the jobs of round-model.ts one at a
// time (aggregations of several federations queue). The worker asks for each update's bytes when it
// needs them, so the main thread reads one blob at a time (and the next one ahead, rounds-service.ts) and
// transfers it without a copy. `inline`
// runs the same functions on the calling thread (unit tests of the rounds service use it).

import { Worker } from 'node:worker_threads';
import { FussError } from '@fuss/core';
import { computeInitialModel, computeRoundModel, type ComputedModel, type ModelShape, type RoundModelSpec } from './round-model.js';

export interface ModelComputer {
  /** `previousState`: the server optimiser's state stored with the previous model, if any. */
  roundModel(spec: RoundModelSpec, previous: Uint8Array, load: (index: number) => Promise<Uint8Array>, previousState?: Uint8Array): Promise<ComputedModel>;
  initialModel(shape: ModelShape, seed: number): Promise<{ bytes: Uint8Array; sha256: string }>;
  close(): Promise<void>;
}

export type ToWorker =
  | { kind: 'round'; id: number; spec: RoundModelSpec; previous: Uint8Array; previousState?: Uint8Array }
  | { kind: 'initial'; id: number; shape: ModelShape; seed: number }
  | { kind: 'bytes'; id: number; index: number; bytes?: Uint8Array; error?: string };

export type FromWorker =
  | { kind: 'load'; id: number; index: number }
  | { kind: 'done'; id: number; bytes: Uint8Array; sha256: string; metrics?: Record<string, unknown>; serverState?: { bytes: Uint8Array; sha256: string } }
  | { kind: 'failed'; id: number; message: string; status?: number; type?: string };

export function inlineModelComputer(): ModelComputer {
  return {
    roundModel: computeRoundModel,
    initialModel: async (shape, seed) => computeInitialModel(shape, seed),
    close: async () => undefined,
  };
}

/** A buffer that can be transferred: the view's own, or a copy when it shares a larger (pooled) buffer. */
function ownBuffer(bytes: Uint8Array): Uint8Array {
  return bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes);
}

interface Pending {
  resolve: (value: ComputedModel) => void;
  reject: (err: Error) => void;
  load?: (index: number) => Promise<Uint8Array>;
}

/** The worker entry: the compiled .js next to this file, or the .ts source through tsx (tests). */
function workerFile(): { file: URL; workerData: unknown; execArgv?: string[] } {
  if (import.meta.url.endsWith('.ts')) {
    return { file: new URL('../segmentation/ts-worker-bootstrap.mjs', import.meta.url), workerData: { entry: new URL('./aggregation-worker.ts', import.meta.url).href }, execArgv: ['--conditions=source'] };
  }
  return { file: new URL('./aggregation-worker.js', import.meta.url), workerData: {} };
}

/**
 * One worker thread computes round and initial models, one job at a time. (Uploads are checked as they
 * arrive, on the event loop: services/update-receiver.ts.)
 */
export function threadModelComputer(log: (line: string) => void = () => undefined): ModelComputer {
  let worker: Worker | undefined;
  let nextId = 1;
  const pending = new Map<number, Pending>();
  let queue = Promise.resolve();

  const start = (): Worker => {
    if (worker) return worker;
    const entry = workerFile();
    const started = new Worker(entry.file, { workerData: entry.workerData, execArgv: entry.execArgv });
    started.on('message', (message: FromWorker) => {
      const job = pending.get(message.id);
      if (!job) return;
      if (message.kind === 'load') {
        // Through a promise, so a loader that throws (a lost lease) rejects instead of escaping this handler.
        Promise.resolve().then(() => job.load!(message.index)).then(
          (bytes) => {
            const own = ownBuffer(bytes);
            started.postMessage({ kind: 'bytes', id: message.id, index: message.index, bytes: own } satisfies ToWorker, [own.buffer as ArrayBuffer]);
          },
          (err: unknown) => started.postMessage({ kind: 'bytes', id: message.id, index: message.index, error: (err as Error).message } satisfies ToWorker),
        );
      } else {
        pending.delete(message.id);
        if (message.kind === 'done') job.resolve({ bytes: message.bytes, sha256: message.sha256, metrics: message.metrics ?? {}, ...(message.serverState ? { serverState: message.serverState } : {}) });
        else job.reject(message.status ? new FussError(message.message, { status: message.status, type: message.type }) : new Error(message.message));
      }
    });
    started.on('error', (err) => log(`model worker failed: ${err.message}`));
    started.on('exit', (code) => {
      if (worker === started) worker = undefined;
      for (const [id, job] of pending) {
        pending.delete(id);
        job.reject(new Error(`the model worker stopped (exit code ${code})`));
      }
    });
    worker = started;
    return started;
  };

  // One job at a time: a second waits for the first (memory holds one aggregation's models).
  const run = <T>(work: () => Promise<T>): Promise<T> => {
    const result = queue.then(work, work);
    queue = result.then(() => undefined, () => undefined);
    return result;
  };

  return {
    roundModel: (spec, previous, load, previousState) => run(() => new Promise<ComputedModel>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject, load });
      start().postMessage({ kind: 'round', id, spec, previous, ...(previousState ? { previousState } : {}) } satisfies ToWorker);
    })),
    initialModel: (shape, seed) => run(() => new Promise<ComputedModel>((resolve, reject) => {
      const id = nextId++;
      pending.set(id, { resolve, reject });
      start().postMessage({ kind: 'initial', id, shape, seed } satisfies ToWorker);
    })),
    close: async () => {
      await queue;
      await worker?.terminate();
      worker = undefined;
    },
  };
}
