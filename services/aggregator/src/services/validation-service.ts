// Server-side validation (fuss server --eval-data DIR): finds the global versions of federations on
// the server's backbone that have no score yet on the dataset, newest first, and has the validator
// evaluate them one at a time off the event loop; lists a federation's scores for the dashboard.

import type { PrismaClient } from '../generated/prisma/client.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { Validator } from '../evaluation/validator.js';
import type { FederationsService } from './federations-service.js';
import type { EvaluationList } from '../schemas/evaluations.js';

/** Global versions looked at per pass (the newest); older ones follow once these are scored. */
const SCAN_LIMIT = 200;
/** Scores in one answer (the newest versions). */
export const EVALUATIONS_LIMIT = 2000;

export function createValidationService(deps: { prisma: PrismaClient; blobs: BlobStore; federations: Pick<FederationsService, 'get'>; validator?: Validator; log?: (line: string) => void }) {
  const { prisma, blobs, validator } = deps;
  const log = deps.log ?? (() => undefined);
  let running: Promise<void> | undefined;
  let timer: ReturnType<typeof setInterval> | undefined;
  // Versions whose bytes could not be read (logged once, tried again after a restart).
  const unreadable = new Set<string>();

  /** Versions of this backbone's federations without a score, newest first. */
  async function unscored(): Promise<{ sha256: string; version: number; federationId: string }[]> {
    if (!validator) return [];
    const models = await prisma.globalModel.findMany({
      where: { federation: { backboneSha256: validator.backbone.sha256, featureKey: validator.backbone.featureKey } },
      orderBy: { createdAt: 'desc' },
      take: SCAN_LIMIT,
      select: { sha256: true, version: true, federationId: true },
    });
    return models.filter((m) => !validator.results.has(m.sha256) && !unreadable.has(m.sha256));
  }

  /** Scores every unscored version found (one at a time); resolves when none is left. */
  async function pass(): Promise<void> {
    for (;;) {
      const [next] = await unscored();
      if (!next) return;
      let bytes: Uint8Array;
      try {
        bytes = await blobs.get(next.sha256);
      } catch (err) {
        unreadable.add(next.sha256);
        log(`federation ${next.federationId}: version ${next.version} cannot be read for validation: ${(err as Error).message}`);
        continue;
      }
      const stored = await validator!.evaluate(next.sha256, bytes);
      if (stored.error) log(`federation ${next.federationId}: version ${next.version} could not be evaluated: ${stored.error}`);
      else log(`federation ${next.federationId}: version ${next.version} on ${validator!.dataset.name}: mIoU ${stored.mIoU!.toFixed(2)}, pixel accuracy ${stored.pixelAccuracy!.toFixed(2)} (${stored.seconds!.toFixed(1)} s)`);
    }
  }

  const service = {
    /** Runs a pass unless one is running (the server calls it every few seconds). */
    sweep(): Promise<void> {
      if (!validator) return Promise.resolve();
      running ??= pass()
        .catch((err: unknown) => log(`validation failed: ${(err as Error).message}`))
        .finally(() => (running = undefined));
      return running;
    },

    /** Sweeps every `intervalMs` until {@link close}. */
    start(intervalMs: number): void {
      if (!validator || timer) return;
      void service.sweep();
      timer = setInterval(() => void service.sweep(), intervalMs);
      timer.unref();
    },

    async close(): Promise<void> {
      clearInterval(timer);
      timer = undefined;
      await running;
    },

    /** A federation's scores on the dataset, by version (newest EVALUATIONS_LIMIT versions). */
    async evaluations(federationId: string): Promise<EvaluationList> {
      const federation = await deps.federations.get(federationId);
      if (!validator) return { enabled: false, evaluations: [], pending: 0 };
      const applies = federation.backbone.sha256 === validator.backbone.sha256 && federation.backbone.featureKey === validator.backbone.featureKey;
      const dataset = { name: validator.dataset.name, images: validator.dataset.images, appliesToFederation: applies };
      if (!applies) return { enabled: true, dataset, evaluations: [], pending: 0 };
      const models = await prisma.globalModel.findMany({ where: { federationId }, orderBy: { version: 'desc' }, take: EVALUATIONS_LIMIT, select: { sha256: true, version: true, roundNumber: true } });
      const evaluations: EvaluationList['evaluations'] = [];
      let pending = 0;
      for (const model of models.reverse()) {
        const stored = validator.results.get(model.sha256);
        if (!stored) pending++;
        else evaluations.push({ version: model.version, round: model.roundNumber, evaluatedAt: stored.evaluatedAt, ...(stored.error ? { error: stored.error } : { mIoU: stored.mIoU, pixelAccuracy: stored.pixelAccuracy, perClassIoU: stored.perClassIoU, images: stored.images, seconds: stored.seconds }) });
      }
      return { enabled: true, dataset, evaluations, pending };
    },
  };
  return service;
}

export type ValidationService = ReturnType<typeof createValidationService>;
