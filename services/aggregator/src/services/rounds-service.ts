// Round lifecycle (DESIGN section 5): open -> aggregating -> closed, or failed. Every state change is
// one transaction that starts with a guarded update (`WHERE state = expected`; zero rows = someone
// else got there first), so two server processes never aggregate a round twice, and an update is
// unique per (round, participant), so a retried upload never counts twice.
//
// Aggregation: claim (open -> aggregating, stamped, leased), compute outside any transaction while
// renewing the lease, store the new model's bytes, then commit (aggregating -> closed + model row +
// next round) guarded by the claim's stamp. A process killed while computing leaves the round
// `aggregating`; once its lease lapses another process (or the restarted one) re-claims it. A failed
// computation or commit counts as an attempt; after MAX_AGGREGATION_ATTEMPTS the round fails. FedAvg
// heads are summed update by update (memory independent of the number of participants); centroid
// mergers receive only the centroids.
//
// Weight bytes live in the blob store (storage/blob-store.ts): each is made durable before the row
// that names it commits. Updates of rounds older than `keepUpdateRounds` lose their bytes after the
// round ends (the rows stay, for the history). A server optimiser's state after each version is a blob
// too, named by that version's model row, so a restarted server continues from it.
//
// Model selection (a federation's `selection` rule): participants report their score of the round's
// starting model in their update's metrics (`validation: { version, loss }`); the aggregation records
// the median as that version's score, updates the federation's selected version, and finishes the
// federation early when the rule's patience has run out.

import { aggregationSeed, canonicalOrder, federationScore, participantClientId, parseSelectionRule, selectVersion, FussError } from '@fuss/core';
import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { BlobStore } from '../storage/blob-store.js';
import { inlineModelComputer, type ModelComputer } from '../aggregation/model-worker.js';
import { DEFAULT_LIMITS } from '../config.js';
import { receiveUpdate, type ReceivedUpdate } from './update-receiver.js';

/** How long an aggregation claim holds, unless renewed, before another process may take the round over. */
export const AGGREGATION_LEASE_MS = DEFAULT_LIMITS.aggregationLeaseMs;
/** Claims of a round's aggregation that may fail (a corrupt stored update, a failed commit) before the round fails. */
export const MAX_AGGREGATION_ATTEMPTS = 3;
/** Interactive transactions: they hold only small rows (the bytes are in the blob store). */
export const TRANSACTION_OPTIONS = { timeout: 20_000, maxWait: 15_000 } as const;

class LeaseLostError extends Error {}

type Federation = Awaited<ReturnType<PrismaClient['federation']['findUniqueOrThrow']>>;
type Round = Awaited<ReturnType<PrismaClient['round']['findUniqueOrThrow']>>;

export interface SubmitAnswer {
  /** True when stored now; false for a retry of an update accepted before (it counts once). */
  accepted: boolean;
  duplicate: boolean;
  round: number;
  /** Updates the round holds now. */
  count: number;
}

export interface JoinAnswer {
  status: 'open' | 'waiting' | 'finished';
  round?: number;
  modelVersion?: number;
  deadline?: string;
  alreadySubmitted?: boolean;
  retryAfterSeconds?: number;
  training?: {
    localSteps: number; k: number; codeDim: number; strategy: string; regularizer: string; regularizerScope: string; seed: number;
    modules: { weighted: boolean; head: boolean; centroids: boolean };
    rounds: number; localOptimizer: string; lrSchedule: string; augment: string; selection: string;
  };
}

export interface RoundsDependencies {
  prisma: PrismaClient;
  blobs: BlobStore;
  clock?: () => Date;
  log?: (line: string) => void;
  /** Aggregation lease (ms); default AGGREGATION_LEASE_MS. */
  leaseMs?: number;
  /** Closed rounds whose updates keep their bytes (default DEFAULT_LIMITS.keepUpdateRounds). */
  keepUpdateRounds?: number;
  /** Where models are computed (default: on the calling thread; the server passes its worker thread). */
  computer?: ModelComputer;
  /** Test hook: runs before the commit of an aggregation (a throw counts as a failed commit). */
  beforeCommit?: (roundId: string) => Promise<void> | void;
}

export function createRoundsService(deps: RoundsDependencies) {
  const { prisma, blobs } = deps;
  const now = deps.clock ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const leaseMs = deps.leaseMs ?? AGGREGATION_LEASE_MS;
  const keepUpdateRounds = deps.keepUpdateRounds ?? DEFAULT_LIMITS.keepUpdateRounds;
  const pending = new Set<Promise<unknown>>();
  const later = (ms: number) => new Date(now().getTime() + ms);
  const computer = deps.computer ?? inlineModelComputer();

  async function federationOf(federationId: string): Promise<Federation> {
    const federation = await prisma.federation.findUnique({ where: { id: federationId } });
    if (!federation) throw new NotFoundError(`federation ${federationId} does not exist`);
    return federation;
  }

  async function currentRound(federationId: string): Promise<Round | null> {
    return prisma.round.findFirst({ where: { federationId }, orderBy: { number: 'desc' } });
  }

  /** Opens round `number` from model `baseVersion`, or finishes the federation after its last round (or when `stop`). */
  async function openNextOrFinish(tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0], federation: Federation, number: number, baseVersion: number, stop = false) {
    if (number > federation.totalRounds || stop) {
      await tx.federation.update({ where: { id: federation.id }, data: { status: 'finished' } });
      return;
    }
    const opened = now();
    await tx.round.create({ data: { federationId: federation.id, number, baseVersion, openedAt: opened, deadlineAt: new Date(opened.getTime() + federation.roundDeadlineSeconds * 1000) } });
  }

  /**
   * Marks a round failed and opens the next one from the same model, in one transaction; `guard`
   * is the state the round must still be in (zero rows: someone else changed it first).
   */
  async function failRound(federation: Federation, round: Round, guard: { state: 'open' } | { state: 'aggregating'; aggregationStartedAt: Date }, reason: string) {
    const failed = await prisma.$transaction(async (tx) => {
      const changed = await tx.round.updateMany({ where: { id: round.id, ...guard }, data: { state: 'failed', closedAt: now(), failureReason: reason.slice(0, 2000) } });
      if (changed.count === 1) await openNextOrFinish(tx, federation, round.number + 1, round.baseVersion);
      return changed.count === 1;
    }, TRANSACTION_OPTIONS);
    if (failed) await pruneUpdates(federation.id, round.number);
  }

  /**
   * Deletes the bytes of updates to ended rounds older than the newest `keepUpdateRounds` (the rows
   * stay, marked pruned). A blob still named by another unpruned update or a model is kept.
   */
  async function pruneUpdates(federationId: string, endedRound: number) {
    const oldest = endedRound - keepUpdateRounds;
    if (oldest < 1) return;
    const stale = await prisma.update.findMany({
      where: { prunedAt: null, round: { federationId, number: { lte: oldest }, state: { in: ['closed', 'failed'] } } },
      select: { id: true, sha256: true },
    });
    if (stale.length === 0) return;
    await prisma.update.updateMany({ where: { id: { in: stale.map((u) => u.id) } }, data: { prunedAt: now(), weights: null } });
    for (const sha256 of new Set(stale.map((u) => u.sha256))) {
      const [updates, models] = await Promise.all([
        prisma.update.count({ where: { sha256, prunedAt: null } }),
        prisma.globalModel.count({ where: { OR: [{ sha256 }, { serverStateSha256: sha256 }] } }),
      ]);
      if (updates === 0 && models === 0) await blobs.delete(sha256);
    }
  }

  /**
   * Stores a received update. The common case costs one statement: the insert is tried first, and only
   * when it stores nothing (the participant's update is there already, or the round is not open) is the
   * earlier update looked up, to answer a retry of the same bytes as a duplicate and anything else as a
   * conflict. (A refused update's blob, committed before the insert, is left to garbage collection.)
   */
  async function accept(federation: Federation, round: Round, participantId: string, received: ReceivedUpdate, samples: number, metrics: unknown): Promise<SubmitAnswer> {
    const { sha256, header } = received;
    const number = round.number;
    // An update trained for another round (a replay, or a participant that missed a round) is refused.
    const namesThisRound = header.round === round.number && header.version === round.baseVersion;
    if (round.state === 'open' && namesThisRound) {
      // The bytes are durable before the row that names them commits.
      await received.blob.commit(sha256, received.bytes);
      // One statement: the row is inserted only while the round is open, holding a share lock on the
      // round until it commits. Uploads do not wait for each other; an aggregation claim (which
      // updates the round) waits for them, so every update accepted with 201 is in the aggregation.
      let inserted = 0;
      try {
        inserted = await prisma.$executeRaw`
          INSERT INTO "Update" ("id", "roundId", "participantId", "samples", "sha256", "size", "metrics", "receivedAt")
          SELECT ${randomUUID()}, r."id", ${participantId}, ${samples}, ${sha256}, ${received.bytes.byteLength}, ${metrics === undefined ? null : JSON.stringify(metrics)}::jsonb, now()
          FROM "Round" r WHERE r."id" = ${round.id} AND r."state" = 'open'
          FOR SHARE`;
      } catch (err) {
        // The participant's update is there already (a retry, or a concurrent copy of this upload): answered below.
        if (!/23505|unique/i.test(`${(err as { meta?: { code?: string } }).meta?.code ?? ''} ${(err as Error).message}`)) throw err;
      }
      if (inserted === 1) {
        // Counted after the commit, so of two concurrent final uploads at least the later one sees the
        // round full; the guarded claim lets only one of them aggregate.
        const count = await prisma.update.count({ where: { roundId: round.id } });
        // The upload is answered at once; the aggregation runs after it (participants poll join).
        if (count >= federation.maxParticipants) service.aggregateInBackground(round.id);
        return { accepted: true, duplicate: false, round: number, count };
      }
    }
    const previous = await prisma.update.findUnique({ where: { roundId_participantId: { roundId: round.id, participantId } } });
    if (previous) {
      if (previous.sha256 === sha256) return { accepted: false, duplicate: true, round: number, count: await prisma.update.count({ where: { roundId: round.id } }) };
      throw new ConflictError(`an update of this participant to round ${number} was already accepted`, 'update-already-accepted');
    }
    if (round.state !== 'open') throw new ConflictError(`round ${number} is ${round.state}; updates are accepted only while it is open`, 'round-not-open');
    if (!namesThisRound) {
      throw new ConflictError(`the update's metadata names round ${header.round} and model version ${header.version}, but round ${round.number} starts from version ${round.baseVersion}`, 'wrong-round');
    }
    throw new ConflictError(`round ${number} closed while the update was uploading`, 'round-not-open');
  }

  const service = {
    async join(federationId: string, participantId: string): Promise<JoinAnswer> {
      const federation = await federationOf(federationId);
      if (federation.status === 'finished') return { status: 'finished' };
      const round = await currentRound(federationId);
      // An aggregation usually takes seconds: ask to come back soon.
      if (!round || round.state !== 'open') return { status: 'waiting', retryAfterSeconds: round?.state === 'aggregating' ? 1 : 5 };
      const existing = await prisma.update.findUnique({ where: { roundId_participantId: { roundId: round.id, participantId } }, select: { id: true } });
      return {
        status: 'open',
        round: round.number,
        modelVersion: round.baseVersion,
        deadline: round.deadlineAt.toISOString(),
        alreadySubmitted: existing !== null,
        training: {
          localSteps: federation.localSteps, k: federation.k, codeDim: federation.codeDim, strategy: federation.strategy, regularizer: federation.regularizer, regularizerScope: federation.regularizerScope, seed: federation.seed,
          modules: { weighted: federation.weighted, head: federation.aggregateHead, centroids: federation.aggregateCentroids },
          rounds: federation.totalRounds, localOptimizer: federation.localOptimizer, lrSchedule: federation.lrSchedule, augment: federation.augment, selection: federation.selection,
        },
      };
    },

    /**
     * Receives and stores a participant's update to round `number` (`length` bytes of `body`, read as
     * they arrive). Returns whether it was stored now or had been accepted before (same bytes:
     * idempotent retry). Triggers aggregation when the round is full.
     */
    async submit(federationId: string, participantId: string, number: number, body: AsyncIterable<Uint8Array>, length: number, samples: number, metrics: unknown): Promise<SubmitAnswer> {
      const federation = await federationOf(federationId);
      const round = await prisma.round.findUnique({ where: { federationId_number: { federationId, number } } });
      if (!round) throw new NotFoundError(`federation ${federationId} has no round ${number}`);
      if (samples > federation.maxSamples) throw new FussError(`samples=${samples} exceeds this federation's maximum of ${federation.maxSamples} images per participant`, { status: 400, type: 'too-many-samples' });
      // Hashed, checked (shapes, dtypes, finiteness, backbone and features) and written while it arrives.
      const received = await receiveUpdate(body, length, { dtypes: ['F32'], backboneSha256: federation.backboneSha256, featureKey: federation.featureKey, channels: federation.channels, codeDim: federation.codeDim, k: federation.k }, blobs);
      try {
        return await accept(federation, round, participantId, received, samples, metrics);
      } finally {
        await received.blob.abort(); // (nothing left to drop once committed)
      }
    },

    /** Starts the aggregation of a round without waiting for it; {@link idle} waits for all started. */
    aggregateInBackground(roundId: string): void {
      const running = service.aggregate(roundId)
        .catch((err: unknown) => log(`round ${roundId}: aggregation failed: ${(err as Error).message}`))
        .finally(() => pending.delete(running));
      pending.add(running);
    },

    /** Resolves when every aggregation started in the background has ended. */
    async idle(): Promise<void> {
      while (pending.size > 0) await Promise.allSettled([...pending]);
    },

    /**
     * Claims, computes and commits the aggregation of a round; returns false when another process
     * holds it or the attempt failed (then it is retried after a back-off, and the round fails after
     * MAX_AGGREGATION_ATTEMPTS attempts). The claim is renewed while the computation runs.
     */
    async aggregate(roundId: string): Promise<boolean> {
      const claimedAt = now();
      const claim = await prisma.round.updateMany({
        where: { id: roundId, OR: [{ state: 'open' }, { state: 'aggregating', leaseUntil: { lt: claimedAt } }] },
        data: { state: 'aggregating', aggregationStartedAt: claimedAt, leaseUntil: later(leaseMs), aggregationAttempts: { increment: 1 } },
      });
      if (claim.count === 0) return false;
      const round = await prisma.round.findUniqueOrThrow({ where: { id: roundId } });
      const federation = await federationOf(round.federationId);
      const ours = { id: roundId, state: 'aggregating', aggregationStartedAt: claimedAt };
      let leaseLost = false;
      const renewal = setInterval(() => {
        prisma.round.updateMany({ where: ours, data: { leaseUntil: later(leaseMs) } })
          .then((renewed) => (leaseLost ||= renewed.count === 0))
          .catch((err: unknown) => log(`round ${round.number}: lease renewal failed: ${(err as Error).message}`));
      }, Math.max(100, Math.floor(leaseMs / 3)));
      const started = performance.now();
      try {
        // Only the holder of the claim creates this federation's next model, so the version is fixed now.
        const latest = await prisma.globalModel.findFirst({ where: { federationId: federation.id }, orderBy: { version: 'desc' }, select: { version: true } });
        const version = (latest?.version ?? 0) + 1;
        const model = await computeAggregate(federation, round, version, () => {
          if (leaseLost) throw new LeaseLostError('the aggregation lease was taken over');
        });
        const seconds = (performance.now() - started) / 1000;
        await deps.beforeCommit?.(roundId);
        const sha256 = await blobs.put(model.bytes, model.sha256);
        const serverStateSha256 = model.serverState ? await blobs.put(model.serverState.bytes, model.serverState.sha256) : null;
        const bytes = model.bytes;
        const rule = parseSelectionRule(federation.selection);
        const committed = await prisma.$transaction(async (tx) => {
          const closing = await tx.round.updateMany({ where: ours, data: { state: 'closed', closedAt: now(), leaseUntil: null, metrics: { ...model.metrics, aggregationSeconds: seconds } as never } });
          if (closing.count === 0) return false; // lost the lease to another process
          await tx.globalModel.create({ data: { federationId: federation.id, version, roundNumber: round.number, sha256, size: bytes.byteLength, serverStateSha256 }, select: { id: true } });
          let stop = false;
          if (rule) {
            const decision = selectVersion(await versionScores(tx, federation.id), version, rule.patience);
            await tx.federation.update({ where: { id: federation.id }, data: { selectedVersion: decision.selected }, select: { id: true } });
            stop = decision.stop;
            if (stop) log(`federation ${federation.id}: no better model score in ${rule.patience} versions; finishing after round ${round.number} (selected version ${decision.selected})`);
          }
          await openNextOrFinish(tx, federation, round.number + 1, version, stop);
          return true;
        }, TRANSACTION_OPTIONS);
        if (!committed) return false;
        log(`federation ${federation.id}: round ${round.number} aggregated from ${String(model.metrics.updates)} updates in ${seconds.toFixed(2)}s`);
        await pruneUpdates(federation.id, round.number).catch((err: unknown) => log(`federation ${federation.id}: pruning updates failed: ${(err as Error).message}`));
        return true;
      } catch (err) {
        if (err instanceof LeaseLostError) return false;
        const reason = `aggregation attempt ${round.aggregationAttempts} of ${MAX_AGGREGATION_ATTEMPTS} failed: ${(err as Error).message}`.slice(0, 2000);
        log(`federation ${federation.id}: round ${round.number}: ${reason}`);
        if (round.aggregationAttempts >= MAX_AGGREGATION_ATTEMPTS) {
          await failRound(federation, round, { state: 'aggregating', aggregationStartedAt: claimedAt }, reason);
        } else {
          // Retried by the sweep after a back-off that grows with the attempts.
          await prisma.round.updateMany({ where: ours, data: { leaseUntil: later(Math.min(leaseMs, 1000 * 2 ** round.aggregationAttempts)), failureReason: reason } });
        }
        return false;
      } finally {
        clearInterval(renewal);
      }
    },

    /**
     * Deadlines and abandoned claims: aggregates open rounds past their deadline with at least
     * minParticipants updates, extends or fails the others per policy, and re-claims aggregations
     * whose lease expired. Safe to run from several processes at once.
     */
    async sweep(): Promise<void> {
      const moment = now();
      const due = await prisma.round.findMany({
        where: { OR: [{ state: 'open', deadlineAt: { lte: moment } }, { state: 'aggregating', leaseUntil: { lt: moment } }] },
        include: { federation: true, _count: { select: { updates: true } } },
      });
      // One round's failure (a database error, say) must not keep the others waiting.
      for (const round of due) {
        try {
          if (round.state === 'aggregating' || round._count.updates >= round.federation.minParticipants) {
            await service.aggregate(round.id);
          } else if (round.federation.deadlinePolicy === 'extend') {
            await prisma.round.updateMany({ where: { id: round.id, state: 'open', deadlineAt: round.deadlineAt }, data: { deadlineAt: new Date(moment.getTime() + round.federation.roundDeadlineSeconds * 1000) } });
          } else {
            await failRound(round.federation, round, { state: 'open' }, `deadline passed with ${round._count.updates} of ${round.federation.minParticipants} required updates`);
          }
        } catch (err) {
          log(`federation ${round.federationId}: round ${round.number}: sweep failed: ${(err as Error).message}`);
        }
      }
    },

    /** Round history with timings and metrics. */
    async history(federationId: string) {
      await federationOf(federationId);
      const rounds = await prisma.round.findMany({ where: { federationId }, orderBy: { number: 'asc' }, include: { _count: { select: { updates: true } } } });
      return rounds.map((r) => ({
        number: r.number,
        state: r.state,
        baseVersion: r.baseVersion,
        updates: r._count.updates,
        openedAt: r.openedAt.toISOString(),
        deadlineAt: r.deadlineAt.toISOString(),
        aggregationStartedAt: r.aggregationStartedAt?.toISOString() ?? null,
        closedAt: r.closedAt?.toISOString() ?? null,
        failureReason: r.failureReason,
        metrics: (r.metrics ?? null) as Record<string, unknown> | null,
      }));
    },
  };

  /** Model scores of the selection rule recorded by the federation's closed rounds: version -> score. */
  async function versionScores(tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0], federationId: string): Promise<Map<number, number>> {
    const closed = await tx.round.findMany({ where: { federationId, state: 'closed' }, select: { metrics: true } });
    const scores = new Map<number, number>();
    for (const { metrics } of closed) {
      const selection = (metrics as { selection?: { version?: unknown; score?: unknown } } | null)?.selection;
      if (typeof selection?.version === 'number' && typeof selection.score === 'number') scores.set(selection.version, selection.score);
    }
    return scores;
  }

  /**
   * `read(index)` that starts reading update index + 1 when index is asked for, so the store's read of
   * the next update overlaps the work on this one (memory holds two updates, whatever their number).
   */
  function readingAhead(count: number, read: (index: number) => Promise<Uint8Array>): (index: number) => Promise<Uint8Array> {
    let ahead: { index: number; bytes: Promise<Uint8Array> } | undefined;
    return (index) => {
      const bytes = ahead?.index === index ? ahead.bytes : read(index);
      ahead = undefined;
      if (index + 1 < count) {
        const next = read(index + 1);
        // A read never asked for (the aggregation stopped early) must not become an unhandled rejection.
        next.catch(() => undefined);
        ahead = { index: index + 1, bytes: next };
      }
      return bytes;
    };
  }

  /** The new global model of a round, computed by the model computer from the stored bytes. */
  async function computeAggregate(federation: Federation, round: Round, version: number, checkLease: () => void) {
    const base = await prisma.globalModel.findUniqueOrThrow({ where: { federationId_version: { federationId: federation.id, version: round.baseVersion } }, select: { sha256: true, serverStateSha256: true } });
    const listing = canonicalOrder(
      (await prisma.update.findMany({ where: { roundId: round.id }, select: { sha256: true, samples: true, metrics: true, participant: { select: { enrolmentIndex: true, name: true } } } }))
        .map((u) => ({ sha256: u.sha256, samples: u.samples, metrics: u.metrics, clientId: participantClientId(u.participant.enrolmentIndex), name: u.participant.name })),
    );
    if (listing.length === 0) throw new FussError(`round ${round.number} has no updates to aggregate`, { status: 409, type: 'no-updates' });
    const model = await computer.roundModel(
      {
        channels: federation.channels,
        codeDim: federation.codeDim,
        k: federation.k,
        backbone: { id: federation.backboneId, sha256: federation.backboneSha256, featureKey: federation.featureKey },
        strategy: federation.strategy,
        robust: federation.robust,
        serverOptimizer: federation.serverOptimizer,
        modules: { weighted: federation.weighted, head: federation.aggregateHead, centroids: federation.aggregateCentroids },
        seed: aggregationSeed(federation.seed, round.number),
        round: round.number,
        version,
        updates: listing.map((u) => ({ clientId: u.clientId, samples: u.samples })),
      },
      await blobs.get(base.sha256),
      // async: a lost lease (checkLease throws) rejects the read, here and for the one read ahead.
      readingAhead(listing.length, async (index) => {
        checkLease();
        return blobs.get(listing[index].sha256);
      }),
      federation.serverOptimizer !== 'none' && base.serverStateSha256 ? await blobs.get(base.serverStateSha256) : undefined,
    );
    // The aggregation's details name clients by id; the metrics say who they are.
    const metrics: Record<string, unknown> = { ...model.metrics, participants: Object.fromEntries(listing.map((u) => [u.clientId, u.name])) };
    if (federation.selection !== 'none') metrics.selection = baseModelScore(listing.map((u) => u.metrics), round.baseVersion);
    return { ...model, metrics };
  }

  /**
   * The federation's score of the model a round started from: the median of the scores its updates
   * report for that version (metrics `validation: { version, loss }`; anything else is ignored).
   */
  function baseModelScore(reported: unknown[], baseVersion: number) {
    const losses: number[] = [];
    for (const metrics of reported) {
      const validation = (metrics as { validation?: { version?: unknown; loss?: unknown } } | null)?.validation;
      if (validation?.version === baseVersion && typeof validation.loss === 'number' && Number.isFinite(validation.loss)) losses.push(validation.loss);
    }
    const score = federationScore(losses);
    return { version: baseVersion, ...(score === undefined ? {} : { score }), reported: losses.length };
  }

  return service;
}

export type RoundsService = ReturnType<typeof createRoundsService>;
