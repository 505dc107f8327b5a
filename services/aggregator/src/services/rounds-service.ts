// Round lifecycle (DESIGN section 5): open -> aggregating -> closed, or failed. Every state change is
// one transaction that starts with a guarded update (`WHERE state = expected`; zero rows = someone
// else got there first), so two server processes never aggregate a round twice, and an update is
// unique per (round, participant), so a retried upload never counts twice.
//
// Aggregation: claim (open -> aggregating, stamped), compute outside any transaction, commit
// (aggregating -> closed + new model + next round) guarded by the claim's stamp. A process killed
// while computing leaves the round `aggregating`; after AGGREGATION_LEASE_MS another process (or the
// restarted one) re-claims it. FedAvg heads are summed update by update (memory independent of the
// number of participants); centroid mergers receive only the centroids.

import {
  aggregationSeed, canonicalOrder, clientWeights, createStrategy, decodeModel, encodeModel, participantClientId, sha256Hex, WeightedSumAccumulator, FussError,
  HEAD_PARAM_NAMES, type ClientUpdate, type HeadParams,
} from '@fuss/core';
import { randomUUID } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { ConflictError, NotFoundError } from '../errors.js';

/** How long an aggregation claim holds before another process may take the round over. */
export const AGGREGATION_LEASE_MS = 60_000;
/** Claims of a round's aggregation that may fail (a corrupt stored update, say) before the round fails. */
export const MAX_AGGREGATION_ATTEMPTS = 3;

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
  };
}

export function createRoundsService(deps: { prisma: PrismaClient; clock?: () => Date; log?: (line: string) => void }) {
  const { prisma } = deps;
  const now = deps.clock ?? (() => new Date());
  const log = deps.log ?? (() => undefined);
  const pending = new Set<Promise<unknown>>();

  async function federationOf(federationId: string): Promise<Federation> {
    const federation = await prisma.federation.findUnique({ where: { id: federationId } });
    if (!federation) throw new NotFoundError(`federation ${federationId} does not exist`);
    return federation;
  }

  async function currentRound(federationId: string): Promise<Round | null> {
    return prisma.round.findFirst({ where: { federationId }, orderBy: { number: 'desc' } });
  }

  /** Opens round `number` from model `baseVersion`, or finishes the federation after its last round. */
  async function openNextOrFinish(tx: Parameters<Parameters<PrismaClient['$transaction']>[0]>[0], federation: Federation, number: number, baseVersion: number) {
    if (number > federation.totalRounds) {
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
    await prisma.$transaction(async (tx) => {
      const failed = await tx.round.updateMany({ where: { id: round.id, ...guard }, data: { state: 'failed', closedAt: now(), failureReason: reason } });
      if (failed.count === 1) await openNextOrFinish(tx, federation, round.number + 1, round.baseVersion);
    });
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
        },
      };
    },

    /**
     * Stores a participant's update to round `number`. Returns whether it was stored now or had been
     * accepted before (same bytes: idempotent retry). Triggers aggregation when the round is full.
     */
    async submit(federationId: string, participantId: string, number: number, body: Uint8Array, samples: number, metrics: unknown): Promise<SubmitAnswer> {
      const federation = await federationOf(federationId);
      const round = await prisma.round.findUnique({ where: { federationId_number: { federationId, number } } });
      if (!round) throw new NotFoundError(`federation ${federationId} has no round ${number}`);
      const sha256 = sha256Hex(body);
      const previous = await prisma.update.findUnique({ where: { roundId_participantId: { roundId: round.id, participantId } } });
      if (previous) {
        if (previous.sha256 === sha256) return { accepted: false, duplicate: true, round: number, count: await prisma.update.count({ where: { roundId: round.id } }) };
        throw new ConflictError(`an update of this participant to round ${number} was already accepted`, 'update-already-accepted');
      }
      if (round.state !== 'open') throw new ConflictError(`round ${number} is ${round.state}; updates are accepted only while it is open`, 'round-not-open');
      // Validate before touching the database: shapes, dtypes, finiteness, backbone and features.
      decodeModel(body, { backboneSha256: federation.backboneSha256, featureKey: federation.featureKey, channels: federation.channels, codeDim: federation.codeDim, k: federation.k }, 'update');
      // One statement: the row is inserted only while the round is open, holding a share lock on the
      // round until it commits. Uploads do not wait for each other; an aggregation claim (which
      // updates the round) waits for them, so every update accepted with 201 is in the aggregation.
      let inserted: number;
      try {
        inserted = await prisma.$executeRaw`
          INSERT INTO "Update" ("id", "roundId", "participantId", "samples", "sha256", "weights", "metrics", "receivedAt")
          SELECT ${randomUUID()}, r."id", ${participantId}, ${samples}, ${sha256}, ${new Uint8Array(body)}, ${metrics === undefined ? null : JSON.stringify(metrics)}::jsonb, now()
          FROM "Round" r WHERE r."id" = ${round.id} AND r."state" = 'open'
          FOR SHARE`;
      } catch (err) {
        // A concurrent retry of the same upload won the unique (round, participant) key: answer as a duplicate.
        if (/23505|unique/i.test(`${(err as { meta?: { code?: string } }).meta?.code ?? ''} ${(err as Error).message}`)) return service.submit(federationId, participantId, number, body, samples, metrics);
        throw err;
      }
      if (inserted === 0) throw new ConflictError(`round ${number} closed while the update was uploading`, 'round-not-open');
      // Counted after the commit, so of two concurrent final uploads at least the later one sees the
      // round full; the guarded claim lets only one of them aggregate.
      const count = await prisma.update.count({ where: { roundId: round.id } });
      // The upload is answered at once; the aggregation runs after it (participants poll join).
      if (count >= federation.maxParticipants) service.aggregateInBackground(round.id);
      return { accepted: true, duplicate: false, round: number, count };
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
     * holds it or the computation failed (the round is retried after the lease, and fails after
     * MAX_AGGREGATION_ATTEMPTS claims).
     */
    async aggregate(roundId: string): Promise<boolean> {
      const claimedAt = now();
      const leaseExpired = new Date(claimedAt.getTime() - AGGREGATION_LEASE_MS);
      const claim = await prisma.round.updateMany({
        where: { id: roundId, OR: [{ state: 'open' }, { state: 'aggregating', aggregationStartedAt: { lt: leaseExpired } }] },
        data: { state: 'aggregating', aggregationStartedAt: claimedAt, aggregationAttempts: { increment: 1 } },
      });
      if (claim.count === 0) return false;
      const round = await prisma.round.findUniqueOrThrow({ where: { id: roundId } });
      const federation = await federationOf(round.federationId);
      const started = performance.now();
      let model: Awaited<ReturnType<typeof computeAggregate>>;
      try {
        model = await computeAggregate(federation, round);
      } catch (err) {
        const reason = `aggregation attempt ${round.aggregationAttempts} of ${MAX_AGGREGATION_ATTEMPTS} failed: ${(err as Error).message}`;
        log(`federation ${federation.id}: round ${round.number}: ${reason}`);
        if (round.aggregationAttempts >= MAX_AGGREGATION_ATTEMPTS) await failRound(federation, round, { state: 'aggregating', aggregationStartedAt: claimedAt }, reason);
        return false;
      }
      const seconds = (performance.now() - started) / 1000;
      const committed = await prisma.$transaction(async (tx) => {
        const closing = await tx.round.updateMany({
          where: { id: roundId, state: 'aggregating', aggregationStartedAt: claimedAt },
          data: { state: 'closed', closedAt: now(), metrics: { ...model.metrics, aggregationSeconds: seconds } as never },
        });
        if (closing.count === 0) return false; // lost the lease to another process
        const latest = await tx.globalModel.findFirst({ where: { federationId: federation.id }, orderBy: { version: 'desc' }, select: { version: true } });
        const version = (latest?.version ?? 0) + 1;
        const bytes = encodeModel({ ...model.weights, round: round.number, version });
        await tx.globalModel.create({ data: { federationId: federation.id, version, roundNumber: round.number, sha256: sha256Hex(bytes), weights: new Uint8Array(bytes) } });
        await openNextOrFinish(tx, federation, round.number + 1, version);
        return true;
      });
      if (committed) log(`federation ${federation.id}: round ${round.number} aggregated from ${model.metrics.updates} updates in ${seconds.toFixed(2)}s`);
      return committed;
    },

    /**
     * Deadlines and abandoned claims: aggregates open rounds past their deadline with at least
     * minParticipants updates, extends or fails the others per policy, and re-claims aggregations
     * whose lease expired. Safe to run from several processes at once.
     */
    async sweep(): Promise<void> {
      const moment = now();
      const due = await prisma.round.findMany({
        where: { OR: [{ state: 'open', deadlineAt: { lte: moment } }, { state: 'aggregating', aggregationStartedAt: { lt: new Date(moment.getTime() - AGGREGATION_LEASE_MS) } }] },
        include: { federation: true, _count: { select: { updates: true } } },
      });
      for (const round of due) {
        if (round.state === 'aggregating' || round._count.updates >= round.federation.minParticipants) {
          await service.aggregate(round.id);
        } else if (round.federation.deadlinePolicy === 'extend') {
          await prisma.round.updateMany({ where: { id: round.id, state: 'open', deadlineAt: round.deadlineAt }, data: { deadlineAt: new Date(moment.getTime() + round.federation.roundDeadlineSeconds * 1000) } });
        } else {
          await failRound(round.federation, round, { state: 'open' }, `deadline passed with ${round._count.updates} of ${round.federation.minParticipants} required updates`);
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

  /** The new global model of a round: heads summed update by update, centroids merged by the strategy. */
  async function computeAggregate(federation: Federation, round: Round) {
    const base = await prisma.globalModel.findUniqueOrThrow({ where: { federationId_version: { federationId: federation.id, version: round.baseVersion } } });
    const expect = { backboneSha256: federation.backboneSha256, featureKey: federation.featureKey, channels: federation.channels, codeDim: federation.codeDim, k: federation.k };
    const previous = decodeModel(base.weights, expect, 'global model');
    const listing = canonicalOrder(
      (await prisma.update.findMany({ where: { roundId: round.id }, select: { id: true, samples: true, participant: { select: { enrolmentIndex: true } } } }))
        .map((u) => ({ id: u.id, samples: u.samples, clientId: participantClientId(u.participant.enrolmentIndex) })),
    );
    if (listing.length === 0) throw new FussError(`round ${round.number} has no updates to aggregate`, { status: 409, type: 'no-updates' });
    const weights = clientWeights(listing.map((u) => u.samples), federation.weighted);
    const sums = WeightedSumAccumulator.forModel(federation.channels, federation.codeDim, federation.k);
    const centroidUpdates: ClientUpdate[] = [];
    for (const [i, entry] of listing.entries()) {
      const row = await prisma.update.findUniqueOrThrow({ where: { id: entry.id }, select: { weights: true } });
      const update = decodeModel(row.weights, expect, 'update');
      sums.add({ ...update.head, centroids: update.centroids }, weights[i]);
      // Centroid mergers see only centroids; the head slot holds the shared previous head (no copy per update).
      centroidUpdates.push({ clientId: entry.clientId, head: previous.head, centroids: update.centroids, samples: entry.samples, backboneSha256: federation.backboneSha256, featureKey: federation.featureKey });
    }
    const summed = sums.result();
    const merged = createStrategy(federation.strategy).aggregate(centroidUpdates, {
      k: federation.k,
      codeDim: federation.codeDim,
      channels: federation.channels,
      seed: aggregationSeed(federation.seed, round.number),
      modules: { head: false, centroids: federation.aggregateCentroids, weighted: federation.weighted },
      previous: { head: previous.head, centroids: previous.centroids },
      backboneSha256: federation.backboneSha256,
      featureKey: federation.featureKey,
    });
    const head: HeadParams = federation.aggregateHead
      ? (Object.fromEntries(HEAD_PARAM_NAMES.map((name) => [name, summed[name]])) as unknown as HeadParams)
      : previous.head;
    return {
      weights: { head, centroids: merged.centroids, channels: federation.channels, codeDim: federation.codeDim, k: federation.k, backbone: { id: federation.backboneId, sha256: federation.backboneSha256, featureKey: federation.featureKey }, info: { strategy: federation.strategy } },
      // permutation[id]: the merged centroid that became class id `id` (ids stay stable across versions).
      metrics: { updates: listing.length, samples: listing.reduce((s, u) => s + u.samples, 0), strategy: federation.strategy, permutation: merged.details.permutation },
    };
  }

  return service;
}

export type RoundsService = ReturnType<typeof createRoundsService>;
