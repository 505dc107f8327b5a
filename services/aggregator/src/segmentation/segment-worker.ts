// A /segment worker thread: holds one backbone session, one head engine and a few decoded models, and
// segments the images the pool sends it, one at a time. Errors go back as messages (status, type,
// message), so a bad image is a 4xx for its request and nothing else.

import { parentPort, workerData } from 'node:worker_threads';
import sharp from 'sharp';
import { Backbone, createEngine, decodeModel, featureConfigKey, FussError, segmentImage, type SegmentationModel } from '@fuss/core';
import type { ToSegmentWorker, WorkerData, WorkerReply, WorkerRequest } from './worker-pool.js';

const MODEL_CACHE_SIZE = 4;

// libvips' operation cache holds decoded images for reuse; every upload here is new, so it only holds memory.
sharp.cache(false);

const config = workerData as WorkerData;
const port = parentPort!;
const log = (line: string) => port.postMessage({ kind: 'log', line } satisfies WorkerReply);

const backbone = await Backbone.open(config.backbonePath, { threads: config.threads, device: config.device, log });
const engine = await createEngine('onnx', { threads: config.threads, device: config.device, log });
const models = new Map<string, SegmentationModel>();

port.postMessage({ kind: 'ready', backbone: { id: backbone.descriptor.id, sha256: backbone.descriptor.sha256, featureKey: featureConfigKey(backbone.descriptor) } } satisfies WorkerReply);

// Jobs in progress and whether the pool asked this worker to stop: the thread ends itself between jobs
// (the pool never terminates it: worker-stop.ts).
let running = 0;
let stopping = false;

async function stop() {
  await backbone.close();
  await engine.dispose();
  process.exit(0);
}

port.on('message', (message: ToSegmentWorker) => {
  if (message.kind === 'stop') {
    stopping = true;
    if (running === 0) void stop();
    return;
  }
  running++;
  handle(message).then(
    (reply) => port.postMessage(reply, reply.kind === 'done' && typeof reply.body !== 'string' ? [reply.body.buffer as ArrayBuffer] : []),
    (err: unknown) => {
      const status = err instanceof FussError ? err.status : 500;
      const type = err instanceof FussError ? err.type : 'internal';
      port.postMessage({ kind: 'failed', id: message.id, status, type, message: String((err as Error)?.message ?? err).slice(0, 2000) } satisfies WorkerReply);
    },
  ).finally(() => {
    running--;
    if (stopping && running === 0) void stop();
  });
});

async function handle(request: WorkerRequest): Promise<WorkerReply> {
  let model = models.get(request.model.sha256);
  if (!model) {
    if (!request.model.bytes) return { kind: 'need-model', id: request.id };
    model = decodeModel(request.model.bytes, { backboneSha256: backbone.descriptor.sha256 }, `model ${request.modelVersion}`);
    models.set(request.model.sha256, model);
    if (models.size > MODEL_CACHE_SIZE) models.delete(models.keys().next().value!);
  } else {
    models.delete(request.model.sha256); // most recently used last
    models.set(request.model.sha256, model);
  }
  // The one image-to-mask pipeline (@fuss/core segmentImage), as `fuss segment --model` runs it, with
  // the server's working size and pixel limit.
  const output = await segmentImage({
    backbone, engine, model, image: request.image, format: request.format, refine: request.refine, classes: request.classes, legend: request.legend,
    maxSide: request.maxSide, maxPixels: request.maxPixels, name: 'the uploaded image',
  });
  const headers = { 'x-model-version': String(request.modelVersion), 'x-working-size': `${output.workWidth}x${output.workHeight}` };
  // A copy of its own, so its buffer can be transferred (sharp's buffers are not always detachable).
  const body = output.body instanceof Uint8Array ? new Uint8Array(output.body) : JSON.stringify({ ...output.body, modelVersion: request.modelVersion });
  return { kind: 'done', id: request.id, contentType: output.contentType, headers, body };
}
