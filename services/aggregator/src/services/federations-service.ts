// Use cases of federations and participants. Every multi-row change is one transaction.

import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { FederationCreate, FederationView } from '../schemas/federations.js';
import { defaultServerOptimizer, FussError, formatAugmentation, formatRobustRule, formatSelectionRule, formatServerOptimizer, parseRobustRule, parseSelectionRule, parseServerOptimizer } from '@fuss/core';
import type { BlobStore } from '../storage/blob-store.js';
import { TRANSACTION_OPTIONS } from './rounds-service.js';
import { inlineModelComputer, type ModelComputer } from '../aggregation/model-worker.js';

/** Room for the safetensors header (tensor table and metadata) on top of the tensor bytes. */
export const MODEL_HEADER_SLACK_BYTES = 64 * 1024;

/** Bytes of a model's tensors: heads l1/l3 [D, C], l2 [C, C], biases, centroids [K, D], all float32. */
export function modelTensorBytes(channels: number, codeDim: number, k: number): number {
  return 4 * (2 * codeDim * channels + channels * channels + channels + 2 * codeDim + k * codeDim);
}

/** Largest safetensors file (update or model) a federation of this shape can produce, bytes. */
export function modelFileLimit(channels: number, codeDim: number, k: number): number {
  return 8 + MODEL_HEADER_SLACK_BYTES + modelTensorBytes(channels, codeDim, k);
}

function mebibytes(bytes: number): string {
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

type FederationRow = Awaited<ReturnType<PrismaClient['federation']['findUniqueOrThrow']>>;

export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

export function newParticipantToken(): string {
  return `fuss_p_${randomBytes(32).toString('base64url')}`;
}

function view(row: FederationRow, latestModelVersion: number): FederationView {
  return {
    id: row.id,
    name: row.name,
    backbone: { id: row.backboneId, sha256: row.backboneSha256, featureKey: row.featureKey, channels: row.channels },
    codeDim: row.codeDim,
    k: row.k,
    strategy: row.strategy,
    robust: row.robust,
    maxSamples: row.maxSamples,
    modules: { weighted: row.weighted, head: row.aggregateHead, centroids: row.aggregateCentroids },
    regularizer: row.regularizer,
    regularizerScope: row.regularizerScope,
    serverOptimizer: row.serverOptimizer,
    localOptimizer: row.localOptimizer,
    lrSchedule: row.lrSchedule,
    augment: row.augment,
    selection: row.selection,
    selectedModelVersion: row.selectedVersion,
    rounds: row.totalRounds,
    localSteps: row.localSteps,
    minParticipants: row.minParticipants,
    maxParticipants: row.maxParticipants,
    roundDeadlineSeconds: row.roundDeadlineSeconds,
    deadlinePolicy: row.deadlinePolicy,
    seed: row.seed,
    status: row.status,
    latestModelVersion,
    createdAt: row.createdAt.toISOString(),
  };
}

/** lastSeenAt is written at most this often per participant. */
export const LAST_SEEN_RESOLUTION_MS = 60_000;

type ParticipantRow = Awaited<ReturnType<PrismaClient['participant']['findUniqueOrThrow']>> & { _count: { updates: number } };

function participantView(row: ParticipantRow) {
  return {
    id: row.id,
    federationId: row.federationId,
    name: row.name,
    enrolmentIndex: row.enrolmentIndex,
    createdAt: row.createdAt.toISOString(),
    lastSeenAt: row.lastSeenAt?.toISOString() ?? null,
    roundsContributed: row._count.updates,
    revoked: row.revokedAt !== null,
    revokedAt: row.revokedAt?.toISOString() ?? null,
  };
}

/** Federations whose update limit is kept in memory (the map starts again when full). */
const UPDATE_LIMITS_KEPT = 10_000;

export function createFederationsService(deps: { prisma: PrismaClient; blobs: BlobStore; updateLimitBytes: number; clock?: () => Date; computer?: ModelComputer }) {
  const { prisma, blobs } = deps;
  const computer = deps.computer ?? inlineModelComputer();
  const lastSeenWrites = new Map<string, number>();
  const updateLimits = new Map<string, number>();

  async function participantOf(federationId: string, participantId: string) {
    const row = await prisma.participant.findUnique({ where: { id: participantId } });
    if (!row || row.federationId !== federationId) throw new NotFoundError(`federation ${federationId} has no participant ${participantId}`);
    return row;
  }
  const now = deps.clock ?? (() => new Date());

  async function latestVersion(federationId: string): Promise<number> {
    const model = await prisma.globalModel.findFirst({ where: { federationId }, orderBy: { version: 'desc' }, select: { version: true } });
    return model?.version ?? 0;
  }

  return {
    /** Creates a federation with its seeded initial model (version 0) and opens round 1. */
    async create(input: FederationCreate): Promise<FederationView> {
      if (input.minParticipants > input.maxParticipants) {
        throw new FussError(`minParticipants (${input.minParticipants}) exceeds maxParticipants (${input.maxParticipants})`, { status: 400, type: 'bad-config' });
      }
      let mechanisms;
      try {
        const serverOptimizer = parseServerOptimizer(input.serverOptimizer ?? defaultServerOptimizer(input.modules));
        if (serverOptimizer.kind !== 'none' && !input.modules.head) throw new Error('a server optimiser steps along the aggregated head: it needs modules.head');
        mechanisms = {
          robust: formatRobustRule(parseRobustRule(input.robust)),
          serverOptimizer: formatServerOptimizer(serverOptimizer),
          augment: formatAugmentation(input.augment),
          selection: formatSelectionRule(parseSelectionRule(input.selection)),
        };
      } catch (err) {
        throw new FussError((err as Error).message, { status: 400, type: 'bad-config' });
      }
      // Checked before anything is computed: a model the update route could not accept is refused.
      const fileBytes = modelFileLimit(input.backbone.channels, input.codeDim, input.k);
      if (fileBytes > deps.updateLimitBytes) {
        throw new FussError(
          `a model with ${input.backbone.channels} channels, code dimension ${input.codeDim} and ${input.k} classes takes ${mebibytes(fileBytes)}, above this server's update limit of ${mebibytes(deps.updateLimitBytes)} (FUSS_UPDATE_LIMIT); use fewer channels`,
          { status: 400, type: 'model-too-large' },
        );
      }
      const initial = await computer.initialModel(
        { channels: input.backbone.channels, codeDim: input.codeDim, k: input.k, backbone: { id: input.backbone.id, sha256: input.backbone.sha256, featureKey: input.backbone.featureKey } },
        input.seed,
      );
      const weights = initial.bytes;
      const opened = now();
      // The bytes are durable before the row that names them commits.
      const sha256 = await blobs.put(weights, initial.sha256);
      const row = await prisma.$transaction(async (tx) => {
        const federation = await tx.federation.create({
          data: {
            name: input.name,
            backboneId: input.backbone.id,
            backboneSha256: input.backbone.sha256,
            featureKey: input.backbone.featureKey,
            channels: input.backbone.channels,
            codeDim: input.codeDim,
            k: input.k,
            strategy: input.strategy,
            ...mechanisms,
            localOptimizer: input.localOptimizer,
            lrSchedule: input.lrSchedule,
            maxSamples: input.maxSamples,
            weighted: input.modules.weighted,
            aggregateHead: input.modules.head,
            aggregateCentroids: input.modules.centroids,
            regularizer: input.regularizer,
            regularizerScope: input.regularizerScope,
            totalRounds: input.rounds,
            localSteps: input.localSteps,
            minParticipants: input.minParticipants,
            maxParticipants: input.maxParticipants,
            roundDeadlineSeconds: input.roundDeadlineSeconds,
            deadlinePolicy: input.deadlinePolicy,
            seed: input.seed,
          },
        });
        await tx.globalModel.create({ data: { federationId: federation.id, version: 0, roundNumber: 0, sha256, size: weights.byteLength }, select: { id: true } });
        await tx.round.create({
          data: { federationId: federation.id, number: 1, baseVersion: 0, openedAt: opened, deadlineAt: new Date(opened.getTime() + input.roundDeadlineSeconds * 1000) },
          select: { id: true },
        });
        return federation;
      }, TRANSACTION_OPTIONS);
      return view(row, 0);
    },

    async list(): Promise<FederationView[]> {
      const rows = await prisma.federation.findMany({ orderBy: { createdAt: 'asc' } });
      return Promise.all(rows.map(async (row) => view(row, await latestVersion(row.id))));
    },

    async get(federationId: string): Promise<FederationView> {
      const row = await prisma.federation.findUnique({ where: { id: federationId } });
      if (!row) throw new NotFoundError(`federation ${federationId} does not exist`);
      return view(row, await latestVersion(row.id));
    },

    /** Enrols a participant; the token is returned once and only its hash is stored. */
    async addParticipant(federationId: string, name: string) {
      await this.get(federationId);
      const token = newParticipantToken();
      // The enrolment index is the count of earlier participants; two concurrent enrolments may pick
      // the same one, and the unique key makes the later retry with the next.
      for (let attempt = 0; ; attempt++) {
        const enrolmentIndex = await prisma.participant.count({ where: { federationId } });
        try {
          const participant = await prisma.participant.create({ data: { federationId, name, enrolmentIndex, tokenHash: hashToken(token) } });
          return { id: participant.id, federationId, name: participant.name, enrolmentIndex, token };
        } catch (err) {
          if ((err as { code?: string }).code !== 'P2002') throw err;
          if (await prisma.participant.findUnique({ where: { federationId_name: { federationId, name } }, select: { id: true } })) {
            throw new ConflictError(`federation ${federationId} already has a participant named "${name}"`, 'participant-exists');
          }
          if (attempt >= 20) throw err;
        }
      }
    },

    /** A participant as it sees itself (its token's identity). */
    async participant(participantId: string) {
      const participant = await prisma.participant.findUniqueOrThrow({ where: { id: participantId } });
      return { id: participant.id, federationId: participant.federationId, name: participant.name, enrolmentIndex: participant.enrolmentIndex };
    },

    /** The participants of a federation in enrolment order, with their activity (admin). */
    async listParticipants(federationId: string) {
      await this.get(federationId);
      const rows = await prisma.participant.findMany({ where: { federationId }, orderBy: { enrolmentIndex: 'asc' }, include: { _count: { select: { updates: true } } } });
      return rows.map(participantView);
    },

    /** Revokes a participant: its token is refused from now on; its accepted updates stay counted. */
    async revokeParticipant(federationId: string, participantId: string) {
      const row = await participantOf(federationId, participantId);
      if (row.revokedAt === null) await prisma.participant.updateMany({ where: { id: participantId, revokedAt: null }, data: { revokedAt: now() } });
      return participantView(await prisma.participant.findUniqueOrThrow({ where: { id: participantId }, include: { _count: { select: { updates: true } } } }));
    },

    /** A new token for a participant, shown once; the old one is refused from now on. */
    async rotateToken(federationId: string, participantId: string) {
      const row = await participantOf(federationId, participantId);
      if (row.revokedAt !== null) throw new ConflictError(`participant ${row.name} is revoked; enrol a new participant instead`, 'participant-revoked');
      const token = newParticipantToken();
      await prisma.participant.update({ where: { id: participantId }, data: { tokenHash: hashToken(token) }, select: { id: true } });
      return { id: row.id, federationId, name: row.name, enrolmentIndex: row.enrolmentIndex, token };
    },

    /** Notes that a participant made an authenticated request (at most one write a minute per participant). */
    async markSeen(participantId: string) {
      const moment = now();
      const last = lastSeenWrites.get(participantId) ?? 0;
      if (moment.getTime() - last < LAST_SEEN_RESOLUTION_MS) return;
      lastSeenWrites.set(participantId, moment.getTime());
      await prisma.participant.updateMany({ where: { id: participantId }, data: { lastSeenAt: moment } });
    },

    /** The participant a bearer token belongs to, or undefined. */
    async participantByToken(token: string) {
      const participant = await prisma.participant.findUnique({ where: { tokenHash: hashToken(token) } });
      return participant && participant.revokedAt === null ? participant : undefined;
    },

    /** The newest model version of a federation (cheap: no weights read). */
    latestVersion,

    /** Safetensors bytes of a global model version (`latest` allowed). */
    async model(federationId: string, version: number | 'latest'): Promise<{ version: number; sha256: string; weights: Uint8Array }> {
      await this.get(federationId);
      const model = await this.modelInfo(federationId, version);
      return { ...model, weights: await blobs.get(model.sha256) };
    },

    /** Version and sha256 of a global model (`latest` allowed), without reading its bytes. */
    async modelInfo(federationId: string, version: number | 'latest'): Promise<{ version: number; sha256: string }> {
      const select = { version: true, sha256: true } as const;
      const model =
        version === 'latest'
          ? await prisma.globalModel.findFirst({ where: { federationId }, orderBy: { version: 'desc' }, select })
          : await prisma.globalModel.findUnique({ where: { federationId_version: { federationId, version } }, select });
      if (!model) throw new NotFoundError(`federation ${federationId} has no model version ${version}`);
      return model;
    },

    /** Largest update body a participant of this federation may send (its model's size plus header room). */
    /** The largest update a federation takes (its model's shape never changes, so the answer is kept). */
    async updateLimit(federationId: string): Promise<number> {
      const known = updateLimits.get(federationId);
      if (known !== undefined) return known;
      const row = await prisma.federation.findUnique({ where: { id: federationId }, select: { channels: true, codeDim: true, k: true } });
      if (!row) throw new NotFoundError(`federation ${federationId} does not exist`);
      const limit = Math.min(deps.updateLimitBytes, modelFileLimit(row.channels, row.codeDim, row.k));
      if (updateLimits.size >= UPDATE_LIMITS_KEPT) updateLimits.clear();
      updateLimits.set(federationId, limit);
      return limit;
    },
  };
}

export type FederationsService = ReturnType<typeof createFederationsService>;
