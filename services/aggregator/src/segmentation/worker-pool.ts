// Inference for POST /segment off the event loop: a pool of worker threads, each holding the backbone
// and a head engine, fed from a bounded queue. When every worker is busy and the queue is full the
// request is refused at once with 503 and Retry-After; a job that runs past its time limit is answered
// 503 at once, and its worker takes the next job when it has finished it. The main thread only routes
// messages. No worker is terminated from outside (worker-stop.ts says why): it ends itself between jobs.

import { Worker } from 'node:worker_threads';
import { FussError, type ClassLabel, type MaskFormat, type Refinement, type ResolvedDevice } from '@fuss/core';
import { ServiceUnavailableError } from '../errors.js';
import { stopWorker } from '../worker-stop.js';

export interface WorkerData {
  backbonePath: string;
  threads: number;
  /** Execution provider of the backbone and head (resolved once by the main thread); CPU when absent. */
  device?: ResolvedDevice;
}

/** What a request asks for besides the image: format, refinement, class names, legend. */
export interface SegmentOptions {
  format: MaskFormat;
  refine?: Refinement;
  classes?: ClassLabel[];
  legend?: boolean;
}

export interface WorkerRequest extends SegmentOptions {
  kind: 'segment';
  id: number;
  image: Uint8Array;
  modelVersion: number;
  model: { sha256: string; bytes?: Uint8Array };
  maxSide: number;
  maxPixels: number;
}

/** What the pool sends a worker: an image, or the request to end once its job is done. */
export type ToSegmentWorker = WorkerRequest | { kind: 'stop' };

export type WorkerReply =
  | { kind: 'ready'; backbone: { id: string; sha256: string; featureKey: string } }
  | { kind: 'log'; line: string }
  | { kind: 'need-model'; id: number }
  | { kind: 'done'; id: number; contentType: string; headers: Record<string, string>; body: Uint8Array | string }
  | { kind: 'failed'; id: number; status: number; type: string; message: string };

export interface SegmentRequest extends SegmentOptions {
  image: Uint8Array;
  modelVersion: number;
  modelSha256: string;
  /** Reads the model's bytes (only when a worker does not hold the model yet). */
  modelBytes: () => Promise<Uint8Array>;
  maxSide: number;
  maxPixels: number;
}

export interface SegmentResult {
  contentType: string;
  headers: Record<string, string>;
  body: Buffer | string;
}

export interface PoolOptions {
  backbonePath: string;
  device?: ResolvedDevice;
  workers: number;
  /** Requests that may wait for a worker. */
  queue: number;
  /** onnxruntime intra-op threads per worker. */
  threads: number;
  timeoutMs: number;
  log?: (line: string) => void;
}

interface Job {
  id: number;
  request: SegmentRequest;
  resolve: (result: SegmentResult) => void;
  reject: (err: unknown) => void;
  withBytes: boolean;
  /** Answered already (503 past its time limit); the worker's reply only frees the slot. */
  abandoned?: boolean;
}

interface Slot {
  worker: Worker;
  job?: Job;
  timer?: NodeJS.Timeout;
}

/** The worker entry: the compiled .js next to this file, or the .ts source through tsx (tests). */
function workerEntry(): { file: URL; options: { workerData?: unknown; execArgv?: string[] } } {
  if (import.meta.url.endsWith('.ts')) {
    return { file: new URL('./ts-worker-bootstrap.mjs', import.meta.url), options: { execArgv: ['--conditions=source'] } };
  }
  return { file: new URL('./segment-worker.js', import.meta.url), options: {} };
}

export class SegmentPool {
  private readonly slots: Slot[] = [];
  /** Every worker not yet exited, ready or still starting (close() waits for all of them). */
  private readonly live = new Set<Worker>();
  private readonly waiting: Job[] = [];
  private nextId = 1;
  private closed = false;
  backbone?: { id: string; sha256: string; featureKey: string };

  private constructor(private readonly options: PoolOptions) {}

  /** Starts the workers and resolves once each has loaded the backbone. */
  static async start(options: PoolOptions): Promise<SegmentPool> {
    const pool = new SegmentPool(options);
    try {
      await Promise.all(Array.from({ length: options.workers }, () => pool.spawn()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    return pool;
  }

  /** Requests being computed or waiting. */
  get load(): { running: number; waiting: number } {
    return { running: this.slots.filter((s) => s.job).length, waiting: this.waiting.length };
  }

  private spawn(): Promise<Slot> {
    const entry = workerEntry();
    const data: WorkerData = { backbonePath: this.options.backbonePath, threads: this.options.threads, device: this.options.device };
    const tsEntry = entry.file.pathname.endsWith('.mjs') ? { entry: new URL('./segment-worker.ts', import.meta.url).href } : {};
    const worker = new Worker(entry.file, { ...entry.options, workerData: { ...data, ...tsEntry }, resourceLimits: { maxOldGenerationSizeMb: 1024 } });
    const slot: Slot = { worker };
    this.live.add(worker);
    return new Promise<Slot>((resolve, reject) => {
      let ready = false;
      worker.on('message', (reply: WorkerReply) => {
        if (reply.kind === 'ready') {
          ready = true;
          this.backbone = reply.backbone;
          if (!this.closed) this.slots.push(slot); // a worker that finished starting after close() was asked to stop
          resolve(slot);
          this.dispatch();
        } else if (reply.kind === 'log') {
          this.options.log?.(`segment worker: ${reply.line}`);
        } else {
          this.settle(slot, reply);
        }
      });
      worker.on('error', (err) => {
        if (!ready) reject(new Error(`a /segment worker failed to start: ${err.message}`));
        else this.options.log?.(`segment worker failed: ${err.message}`);
      });
      worker.on('exit', (code) => {
        this.live.delete(worker);
        if (!ready) {
          reject(new Error(`a /segment worker exited with code ${code} while starting`));
          return;
        }
        this.retire(slot, new ServiceUnavailableError('the segmentation worker stopped while handling this image; retry', 1));
        if (!this.closed) this.spawn().catch((err: unknown) => this.options.log?.(`cannot restart a /segment worker: ${(err as Error).message}`));
      });
    });
  }

  /** Removes a slot whose worker has stopped and fails its job. */
  private retire(slot: Slot, reason: unknown) {
    const index = this.slots.indexOf(slot);
    if (index >= 0) this.slots.splice(index, 1);
    clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    job?.reject(reason);
  }

  private settle(slot: Slot, reply: Exclude<WorkerReply, { kind: 'ready' | 'log' }>) {
    const job = slot.job;
    if (!job || job.id !== reply.id) return;
    if (job.abandoned) {
      this.finish(slot, () => undefined);
      return;
    }
    if (reply.kind === 'need-model') {
      job.withBytes = true;
      job.request.modelBytes().then(
        (bytes) => this.post(slot, job, bytes),
        (err: unknown) => this.finish(slot, () => job.reject(err)),
      );
      return;
    }
    this.finish(slot, () => {
      if (reply.kind === 'done') {
        job.resolve({ contentType: reply.contentType, headers: reply.headers, body: typeof reply.body === 'string' ? reply.body : Buffer.from(reply.body.buffer, reply.body.byteOffset, reply.body.byteLength) });
      } else {
        job.reject(new FussError(reply.message, { status: reply.status, type: reply.type }));
      }
    });
  }

  private finish(slot: Slot, complete: () => void) {
    clearTimeout(slot.timer);
    slot.job = undefined;
    complete();
    this.dispatch();
  }

  private post(slot: Slot, job: Job, modelBytes?: Uint8Array) {
    const { request } = job;
    const message: WorkerRequest = {
      kind: 'segment',
      id: job.id,
      image: request.image,
      format: request.format,
      refine: request.refine,
      classes: request.classes,
      legend: request.legend,
      modelVersion: request.modelVersion,
      model: { sha256: request.modelSha256, bytes: modelBytes },
      maxSide: request.maxSide,
      maxPixels: request.maxPixels,
    };
    slot.worker.postMessage(message);
  }

  private dispatch() {
    for (const slot of this.slots) {
      if (slot.job || this.waiting.length === 0) continue;
      const job = this.waiting.shift()!;
      slot.job = job;
      slot.timer = setTimeout(() => {
        // The client is answered now; the worker cannot be interrupted safely, so its slot stays busy
        // until it has finished (an inference's time is bounded by the pixel limit).
        this.options.log?.(`a /segment inference ran past ${this.options.timeoutMs} ms; answered 503, its worker finishes it first`);
        job.abandoned = true;
        job.reject(new ServiceUnavailableError(`segmentation took longer than ${this.options.timeoutMs} ms and was abandoned`, 5));
      }, this.options.timeoutMs);
      this.post(slot, job);
    }
  }

  /** Segments an image; 503 at once when every worker is busy and the queue is full. */
  segment(request: SegmentRequest): Promise<SegmentResult> {
    if (this.closed) return Promise.reject(new ServiceUnavailableError('the server is shutting down', 5));
    const busy = this.slots.every((s) => s.job) || this.slots.length === 0;
    if (busy && this.waiting.length >= this.options.queue) {
      return Promise.reject(new ServiceUnavailableError(`all ${this.options.workers} segmentation workers are busy and ${this.waiting.length} images are waiting; retry shortly`, 2));
    }
    return new Promise<SegmentResult>((resolve, reject) => {
      this.waiting.push({ id: this.nextId++, request, resolve, reject, withBytes: false });
      this.dispatch();
    });
  }

  /** Answers what waits with 503 and stops every worker once its job is done (never mid-inference). */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.waiting.splice(0)) job.reject(new ServiceUnavailableError('the server is shutting down', 5));
    for (const slot of this.slots.splice(0)) {
      clearTimeout(slot.timer);
      const job = slot.job;
      slot.job = undefined;
      if (job && !job.abandoned) job.reject(new ServiceUnavailableError('the server is shutting down', 5));
    }
    await Promise.all([...this.live].map(stopWorker));
  }
}
