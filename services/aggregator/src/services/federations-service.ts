// Use cases of federations and participants. Every multi-row change is one transaction.

import { createHash, randomBytes } from 'node:crypto';
import type { PrismaClient } from '../generated/prisma/client.js';
import { ConflictError, NotFoundError } from '../errors.js';
import type { FederationCreate, FederationView } from '../schemas/federations.js';
import { FussError } from '@fuss/core';
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
    modules: { weighted: row.weighted, head: row.aggregateHead, centroids: row.aggregateCentroids },
    regularizer: row.regularizer,
    regularizerScope: row.regularizerScope,
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

export function createFederationsService(deps: { prisma: PrismaClient; blobs: BlobStore; updateLimitBytes: number; clock?: () => Date; computer?: ModelComputer }) {
  const { prisma, blobs } = deps;
  const computer = deps.computer ?? inlineModelComputer();
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
    async updateLimit(federationId: string): Promise<number> {
      const row = await prisma.federation.findUnique({ where: { id: federationId }, select: { channels: true, codeDim: true, k: true } });
      if (!row) throw new NotFoundError(`federation ${federationId} does not exist`);
      return Math.min(deps.updateLimitBytes, modelFileLimit(row.channels, row.codeDim, row.k));
    },
  };
}

export type FederationsService = ReturnType<typeof createFederationsService>;
