// The participant SDK (DESIGN section 6): `await client.joinRound()` does one whole local round: join
// the current round, download the global model, load the participant's features (cached), train
// locally with the round's configuration, upload the update and return a summary.
//
// Seeds derive from the federation seed and the participant's enrolment index (`@fuss/core`
// simulation/seeds), so a federation run through this client reproduces the in-process simulator.
// Every trained update is written to the state folder before it is uploaded: a participant restarted
// after a failed or interrupted upload sends the same bytes again (the server counts them once) instead
// of training anew. When the federation keeps participants' Adam states across rounds, each round's
// states are saved there too (before the update), and the next round continues from them. With a
// model-selection rule, the participant holds out a share of its images and reports its score of the
// round's model on them in the update's metrics (`validation`).

import { EventEmitter } from 'node:events';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  Backbone, ConfigError, createEngine, decodeModel, decodeOptimizerState, encodeModel, encodeOptimizerState, featureConfigKey, FussError, headParamLength, HEAD_PARAM_NAMES,
  loadParticipantData, localRoundTrainerOptions, openDataset, parseAugmentation, parseLearningRateSchedule, parseSelectionRule, participantBatchOptions, resolveDevice,
  scoreOnHeldOut, TRAINING_DEFAULTS, trainModel,
  type DeviceRequest, type ParticipantData, type ResolvedDevice, type HeadParams, type Regularizer, type RegularizerScope, type SegmentationModel, type StepEvent,
  type TrainerOptimizerState, type TrainingEngine,
} from '@fuss/core';
import { FussApi, type FussApiOptions } from './api.js';

export interface FussClientOptions extends FussApiOptions {
  /** The participant's dataset folder (images/ is read; labels are never used). */
  data: string;
  /** Path of the backbone ONNX file; its sha256 must be the federation's. */
  backbone: string;
  /** Feature cache and participant state; default `.fuss/cache`. */
  cacheDir?: string;
  /**
   * Execution device of the backbone and the onnx engine: `auto` (default) tries cuda, then webgpu,
   * then cpu, and logs one line of the choice; an unavailable provider falls back to the CPU.
   */
  device?: DeviceRequest;
  /** onnxruntime settings of the backbone (threads; a device here overrides `device`). */
  backboneOptions?: Parameters<typeof Backbone.open>[1];
  /** Training engine: auto (default), onnx or tfjs; or an engine object the caller owns. */
  engine?: string | TrainingEngine;
  engineOptions?: Omit<NonNullable<Parameters<typeof createEngine>[1]>, 'log'>;
  /** Log lines (engine choice, waiting, reuse of a saved update). */
  log?: (line: string) => void;
}

/** Progress of a round, in the order the phases happen. */
export type ParticipantEvent =
  | { phase: 'waiting'; retryAfterSeconds: number; reason: string }
  | { phase: 'joined'; round: number; modelVersion: number; localSteps: number }
  | { phase: 'downloaded'; round: number; bytes: number }
  | { phase: 'features'; done: number; total: number }
  | { phase: 'training'; round: number; step: number; steps: number; loss: number }
  | { phase: 'uploading'; round: number; bytes: number }
  | { phase: 'uploaded'; round: number; duplicate: boolean; count: number };

export interface RoundSummary {
  status: 'submitted';
  round: number;
  modelVersion: number;
  /** True when the server already held this update (a retry after a lost answer). */
  duplicate: boolean;
  /** True when the update was read from the state folder instead of trained again. */
  resumed: boolean;
  samples: number;
  steps: number;
  loss: { first: number; last: number } | null;
  clusterEntropy: number | null;
  bytes: { downloaded: number; uploaded: number };
  seconds: { wait: number; download: number; features: number; train: number; upload: number; total: number };
}

export type JoinRoundResult = RoundSummary | { status: 'finished' };

/** The backbone given to the client is not the federation's. */
export class BackboneMismatchError extends FussError {
  constructor(message: string) {
    super(message, { status: 409, type: 'backbone-mismatch' });
  }
}

interface Identity {
  participantId: string;
  federationId: string;
  name: string;
  index: number;
  backbone: { id: string; sha256: string; featureKey: string; channels: number };
}

/** The optimiser name written into saved Adam states (a file of another optimiser is not used). */
const LOCAL_OPTIMIZER_STATE = 'adam';

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const timer = setTimeout(resolve, ms);
    signal?.addEventListener('abort', () => { clearTimeout(timer); reject(signal.reason); }, { once: true });
  });

export class FussClient extends EventEmitter<{ progress: [ParticipantEvent] }> {
  readonly api: FussApi;
  private readonly options: FussClientOptions;
  private readonly cacheDir: string;
  private readonly log: (line: string) => void;
  private identity?: Identity;
  private backbone?: Backbone;
  private engine?: TrainingEngine;
  private ownsEngine = false;
  private local?: ParticipantData;

  constructor(options: FussClientOptions) {
    super();
    this.options = options;
    this.api = new FussApi(options);
    this.cacheDir = options.cacheDir ?? '.fuss/cache';
    this.log = options.log ?? (() => undefined);
  }

  /**
   * Takes part in one round: waits while the server aggregates, trains on the current round's model
   * and uploads. When this participant's update to the current round is already in, waits for the
   * next round. Resolves with `{ status: 'finished' }` when the federation has no more rounds.
   */
  async joinRound(options: { signal?: AbortSignal } = {}): Promise<JoinRoundResult> {
    const started = performance.now();
    const identity = await this.prepare();
    const { federationId } = identity;

    // 1. Join: wait (as the server asks) while no round is open for us.
    let joined;
    for (;;) {
      joined = await this.api.join(federationId);
      if (joined.status === 'finished') return { status: 'finished' };
      if (joined.status === 'open' && !joined.alreadySubmitted) break;
      const retryAfterSeconds = joined.retryAfterSeconds ?? 1;
      const reason = joined.status === 'open' ? `update to round ${joined.round} already accepted; waiting for the next round` : 'no round open (aggregating or between rounds)';
      this.emit('progress', { phase: 'waiting', retryAfterSeconds, reason });
      await sleep(retryAfterSeconds * 1000, options.signal);
    }
    const round = joined.round!;
    const modelVersion = joined.modelVersion!;
    const training = joined.training!;
    this.emit('progress', { phase: 'joined', round, modelVersion, localSteps: training.localSteps });
    const waited = performance.now();

    // 2. The global model the round starts from.
    const modelBytes = await this.api.downloadModel(federationId, modelVersion);
    const expect = { backboneSha256: identity.backbone.sha256, featureKey: identity.backbone.featureKey, channels: identity.backbone.channels, codeDim: training.codeDim, k: training.k };
    const global = decodeModel(modelBytes, expect, `global model ${modelVersion}`);
    this.emit('progress', { phase: 'downloaded', round, bytes: modelBytes.length });
    const downloaded = performance.now();

    // 3. Features (cached), the score of the round's model on the held-out images (model selection),
    // then 4. local training, unless this round's update is already saved.
    const local = await this.localData(training, identity.index);
    const previous = await this.previousModel(round, expect);
    const keepHead = !training.modules.head && previous !== undefined;
    const keepCentroids = !training.modules.centroids && previous !== undefined;
    const start = { head: keepHead ? previous!.head : global.head, centroids: keepCentroids ? previous!.centroids : global.centroids };
    const batch = participantBatchOptions(local.shifts);
    const validation = local.validation
      ? await scoreOnHeldOut(local, await this.trainingEngine(), start, batch, { federationSeed: training.seed, index: identity.index, k: training.k, codeDim: training.codeDim })
      : undefined;
    const featured = performance.now();
    let update = await this.savedUpdate(round, modelVersion, expect);
    const resumed = update !== undefined;
    let history: StepEvent[] = [];
    if (update) {
      this.log(`round ${round}: uploading the update saved before (no training)`);
    } else {
      const trainer = localRoundTrainerOptions(
        batch,
        {
          federationSeed: training.seed, index: identity.index, round, localSteps: training.localSteps, k: training.k, codeDim: training.codeDim,
          regularizer: training.regularizer as Regularizer, regularizerScope: training.regularizerScope as RegularizerScope,
          lrSchedule: parseLearningRateSchedule(training.lrSchedule ?? 'constant'), rounds: training.rounds,
        },
        global.head,
        // MOON's negative: our own head of the previous round (the initial model in round 1).
        previous?.head ?? global.head,
      );
      const keepOptimizer = training.localOptimizer === 'keep';
      const optimizerState = keepOptimizer ? await this.savedOptimizerState(round - 1, identity.backbone.channels, training.codeDim, training.k) : undefined;
      if (keepOptimizer && round > 1 && !optimizerState) this.log(`round ${round}: no saved optimiser state of round ${round - 1}; starting Adam afresh`);
      const engine = await this.trainingEngine();
      const result = await trainModel(local.store, engine, start, { ...trainer, ...(optimizerState ? { optimizerState } : {}) }, (event) => {
        this.emit('progress', { phase: 'training', round, step: event.step, steps: event.steps, loss: event.loss });
      });
      history = result.history;
      if (keepOptimizer) await this.saveOptimizerState(round, result.optimizerState);
      update = encodeModel({
        head: result.head, centroids: result.centroids, channels: identity.backbone.channels, codeDim: training.codeDim, k: training.k,
        backbone: { id: identity.backbone.id, sha256: identity.backbone.sha256, featureKey: identity.backbone.featureKey }, round, version: modelVersion,
      });
      await this.saveUpdate(round, update);
    }
    const trained = performance.now();

    // 5. Upload (retried by the transport; the server counts an update once).
    this.emit('progress', { phase: 'uploading', round, bytes: update.length });
    const trainedMetrics = history.length > 0
      ? { loss: history.at(-1)!.loss, firstLoss: history[0].loss, steps: history.length, clusterEntropy: history.at(-1)!.clusterEntropy, trainSeconds: (trained - featured) / 1000 }
      : { resumed: true };
    const metrics = validation ? { ...trainedMetrics, validation: { version: modelVersion, ...validation } } : trainedMetrics;
    const answer = await this.api.uploadUpdate(federationId, round, update, { samples: local.store.sourceImages, metrics });
    this.emit('progress', { phase: 'uploaded', round, duplicate: answer.duplicate, count: answer.count });
    const uploaded = performance.now();
    await this.forgetOlderThan(round);

    return {
      status: 'submitted',
      round,
      modelVersion,
      duplicate: answer.duplicate,
      resumed,
      samples: local.store.sourceImages,
      steps: history.length,
      loss: history.length > 0 ? { first: history[0].loss, last: history.at(-1)!.loss } : null,
      clusterEntropy: history.at(-1)?.clusterEntropy ?? null,
      bytes: { downloaded: modelBytes.length, uploaded: update.length },
      seconds: {
        wait: (waited - started) / 1000,
        download: (downloaded - waited) / 1000,
        features: (featured - downloaded) / 1000,
        train: (trained - featured) / 1000,
        upload: (uploaded - trained) / 1000,
        total: (uploaded - started) / 1000,
      },
    };
  }

  /** Joins rounds until the federation is finished (or `rounds` rounds were done); returns their summaries. */
  async participate(options: { rounds?: number; signal?: AbortSignal } = {}): Promise<RoundSummary[]> {
    const summaries: RoundSummary[] = [];
    while (options.rounds === undefined || summaries.length < options.rounds) {
      const result = await this.joinRound({ signal: options.signal });
      if (result.status === 'finished') break;
      summaries.push(result);
    }
    return summaries;
  }

  /** Releases the backbone session and the engine (when the client created it). */
  async close(): Promise<void> {
    await this.backbone?.close();
    this.backbone = undefined;
    if (this.ownsEngine) await this.engine?.dispose();
    this.engine = undefined;
    await this.api.close();
  }

  /** Who we are, and a check that our backbone is the federation's, before any training. */
  private async prepare(): Promise<Identity> {
    if (this.identity) return this.identity;
    const me = await this.api.me();
    const federation = await this.api.getFederation(me.federationId);
    this.backbone ??= await Backbone.open(this.options.backbone, {
      ...this.options.backboneOptions,
      device: this.options.backboneOptions?.device ?? (await this.device()),
      log: this.options.backboneOptions?.log ?? this.log,
    });
    const descriptor = this.backbone.descriptor;
    if (descriptor.sha256 !== federation.backbone.sha256) {
      throw new BackboneMismatchError(
        `backbone ${this.options.backbone} (sha256 ${descriptor.sha256.slice(0, 12)}…) is not the federation's ${federation.backbone.id} (sha256 ${federation.backbone.sha256.slice(0, 12)}…)`,
      );
    }
    if (featureConfigKey(descriptor) !== federation.backbone.featureKey) {
      throw new BackboneMismatchError(`backbone ${this.options.backbone} produces features configured as ${featureConfigKey(descriptor)}, the federation expects ${federation.backbone.featureKey} (outputs, sizing or normalisation differ)`);
    }
    this.identity = { participantId: me.id, federationId: me.federationId, name: me.name, index: me.enrolmentIndex, backbone: federation.backbone };
    return this.identity;
  }

  private deviceChoice?: Promise<ResolvedDevice>;
  /** `options.device` resolved once, so the backbone and the engine share one choice and one log line. */
  private device(): Promise<ResolvedDevice> {
    this.deviceChoice ??= resolveDevice(this.options.device ?? 'auto', { log: this.log });
    return this.deviceChoice;
  }

  private async trainingEngine(): Promise<TrainingEngine> {
    if (this.engine) return this.engine;
    if (typeof this.options.engine === 'object') {
      this.engine = this.options.engine;
    } else {
      const device = this.options.engineOptions?.device ?? (await this.device());
      this.engine = await createEngine(this.options.engine ?? 'auto', { ...this.options.engineOptions, device, log: this.log });
      this.ownsEngine = true;
    }
    return this.engine;
  }

  /**
   * The participant's features (every view the federation trains on), its held-out images (with a
   * selection rule) and calibrated shifts, computed once per client.
   */
  private async localData(training: { seed: number; augment?: string; selection?: string }, index: number): Promise<ParticipantData> {
    if (this.local) return this.local;
    const dataset = await openDataset(this.options.data);
    if (dataset.items.length === 0) throw new ConfigError(`${this.options.data} holds no images`);
    const views = parseAugmentation(training.augment ?? 'none');
    this.local = await loadParticipantData(dataset.items, this.backbone!, {
      federationSeed: training.seed,
      index,
      batch: participantBatchOptions(TRAINING_DEFAULTS.stegoShifts),
      views,
      selection: parseSelectionRule(training.selection ?? 'none'),
      cacheDir: this.cacheDir,
      log: this.log,
      onProgress: (done, total) => this.emit('progress', { phase: 'features', done, total }),
    });
    const { store, validation, shifts } = this.local;
    this.log(`${store.sourceImages} images${validation ? ` (${validation.sourceImages} more held out for model selection)` : ''}${views.length > 1 ? `, ${views.length} views each` : ''}, shifts ${Object.values(shifts).map((v) => v.toFixed(3)).join('/')}`);
    return this.local;
  }

  private stateDir(): string {
    return join(this.cacheDir, 'participants', this.identity!.participantId);
  }

  private updatePath(round: number): string {
    return join(this.stateDir(), `round-${round}.safetensors`);
  }

  /** The update trained for `round` from `modelVersion` and saved before its upload, if any. */
  private async savedUpdate(round: number, modelVersion: number, expect: Parameters<typeof decodeModel>[1]): Promise<Uint8Array | undefined> {
    const bytes = await readFile(this.updatePath(round)).catch(() => undefined);
    if (!bytes) return undefined;
    try {
      const model = decodeModel(bytes, expect, 'saved update');
      if (model.round === round && model.version === modelVersion) return bytes;
    } catch (err) {
      this.log(`ignoring a damaged saved update: ${(err as Error).message}`);
    }
    return undefined;
  }

  /** Our own model of the round before `round` (MOON's negative; kept heads or centroids), if saved. */
  private async previousModel(round: number, expect: Parameters<typeof decodeModel>[1]): Promise<{ head: HeadParams; centroids: Float32Array } | undefined> {
    const bytes = await readFile(this.updatePath(round - 1)).catch(() => undefined);
    if (!bytes) return undefined;
    try {
      const model: SegmentationModel = decodeModel(bytes, expect, 'previous update');
      return { head: model.head, centroids: model.centroids };
    } catch {
      return undefined;
    }
  }

  private async saveUpdate(round: number, bytes: Uint8Array): Promise<void> {
    await this.writeAtomically(this.updatePath(round), bytes);
  }

  private async writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
    await mkdir(this.stateDir(), { recursive: true });
    await writeFile(`${path}.tmp`, bytes);
    await rename(`${path}.tmp`, path);
  }

  private optimizerStatePath(round: number): string {
    return join(this.stateDir(), `round-${round}.optimizer.safetensors`);
  }

  /** The Adam states saved after our training of `round`, if any (a damaged file counts as none). */
  private async savedOptimizerState(round: number, channels: number, codeDim: number, k: number): Promise<TrainerOptimizerState | undefined> {
    const bytes = await readFile(this.optimizerStatePath(round)).catch(() => undefined);
    if (!bytes) return undefined;
    const head = Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, headParamLength(name, channels, codeDim)]));
    try {
      const groups = decodeOptimizerState(bytes, LOCAL_OPTIMIZER_STATE, { head, centroids: { centroids: k * codeDim } }, 'saved optimiser state');
      if (!groups?.head.v || !groups.centroids.v) return undefined;
      return { head: { step: groups.head.step, m: groups.head.m, v: groups.head.v }, centroids: { step: groups.centroids.step, m: groups.centroids.m, v: groups.centroids.v } };
    } catch (err) {
      this.log(`ignoring a damaged saved optimiser state: ${(err as Error).message}`);
      return undefined;
    }
  }

  private async saveOptimizerState(round: number, state: TrainerOptimizerState): Promise<void> {
    await this.writeAtomically(this.optimizerStatePath(round), encodeOptimizerState(LOCAL_OPTIMIZER_STATE, { head: state.head, centroids: state.centroids }));
  }

  /** Keeps this round's update and optimiser state (next round's "previous") and removes older ones. */
  private async forgetOlderThan(round: number): Promise<void> {
    const names = await readdir(this.stateDir()).catch(() => [] as string[]);
    for (const name of names) {
      const match = /^round-(\d+)\.(?:optimizer\.)?safetensors$/.exec(name);
      if (match && Number(match[1]) < round) await rm(join(this.stateDir(), name), { force: true });
    }
  }
}
