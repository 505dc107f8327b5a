// A federation's history as the dashboard charts it: the centroids of its global versions (for the
// centroid map) and the numeric metrics participants sent with their updates (for the charts). Both
// answers are bounded in size whatever the federation's K, D, rounds or participants.

import { classTable } from '@fuss/core';
import type { PrismaClient } from '../generated/prisma/client.js';
import type { BlobStore } from '../storage/blob-store.js';
import type { FederationsService } from './federations-service.js';
import type { ClassesService } from './classes-service.js';
import type { CentroidHistory, UpdateReports } from '../schemas/history.js';

/** Centroid values in one answer (versions x K x D); about 9 bytes each as JSON. */
export const CENTROID_NUMBERS_LIMIT = 500_000;
/** Centroid values kept in memory across requests (versions are immutable, cached by sha256). */
export const CENTROID_CACHE_NUMBERS = 8_000_000;
/** Updates in one answer (the newest rounds first). */
export const UPDATE_REPORTS_LIMIT = 5000;
/** Numeric metrics kept per update, and the longest metric name. */
export const METRICS_PER_UPDATE = 16;
export const METRIC_NAME_MAX_LENGTH = 64;

/**
 * Versions to show out of 0..latest: all when `perVersion` values each fit `limit` in total, else
 * evenly spaced ones including 0 and latest; none when one version alone exceeds the limit.
 */
export function versionsToShow(latest: number, perVersion: number, limit: number): number[] {
  const fit = Math.floor(limit / Math.max(1, perVersion));
  if (fit < 1) return [];
  if (fit === 1) return [latest];
  if (latest + 1 <= fit) return Array.from({ length: latest + 1 }, (_, v) => v);
  const chosen = new Set<number>();
  for (let i = 0; i < fit; i++) chosen.add(Math.round((i * latest) / (fit - 1)));
  return [...chosen].sort((a, b) => a - b);
}

/**
 * The `centroids` tensor [k, d] of a safetensors model, read from its header without decoding or
 * copying the head (a model may be 64 MiB; its centroids are a few kilobytes). The models are the
 * server's own, validated when they were written; the checks here guard against a damaged store.
 */
export function centroidsOf(bytes: Uint8Array, k: number, d: number): Float32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLength = bytes.length >= 8 ? Number(view.getBigUint64(0, true)) : -1;
  if (headerLength < 2 || 8 + headerLength > bytes.length) throw new Error('stored model has a malformed safetensors header');
  const header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLength).toString('utf8')) as Record<string, { dtype?: string; shape?: number[]; data_offsets?: [number, number] }>;
  const entry = header.centroids;
  const [begin, end] = entry?.data_offsets ?? [0, 0];
  if (entry?.dtype !== 'F32' || entry.shape?.[0] !== k || entry.shape?.[1] !== d || end - begin !== 4 * k * d || 8 + headerLength + end > bytes.length) {
    throw new Error(`stored model has no float32 centroids of shape [${k}, ${d}]`);
  }
  const out = new Float32Array(k * d);
  new Uint8Array(out.buffer).set(bytes.subarray(8 + headerLength + begin, 8 + headerLength + end));
  return out;
}

/** 6 significant digits: float32 centroids as short JSON numbers. */
function rounded(value: number): number {
  return Number(value.toPrecision(6));
}

export function createHistoryService(deps: { prisma: PrismaClient; blobs: BlobStore; federations: Pick<FederationsService, 'get'>; classes: Pick<ClassesService, 'get'> }) {
  const { prisma, blobs } = deps;
  // sha256 -> centroids, least recently used first; reads in flight are shared.
  const cache = new Map<string, Float32Array>();
  let cachedNumbers = 0;
  const reading = new Map<string, Promise<Float32Array>>();

  async function cachedCentroids(sha256: string, k: number, d: number): Promise<Float32Array> {
    const hit = cache.get(sha256);
    if (hit) {
      cache.delete(sha256);
      cache.set(sha256, hit);
      return hit;
    }
    let pending = reading.get(sha256);
    if (!pending) {
      pending = blobs.get(sha256).then((bytes) => centroidsOf(bytes, k, d)).finally(() => reading.delete(sha256));
      reading.set(sha256, pending);
    }
    const centroids = await pending;
    if (!cache.has(sha256)) {
      cache.set(sha256, centroids);
      cachedNumbers += centroids.length;
      for (const [key, value] of cache) {
        if (cachedNumbers <= CENTROID_CACHE_NUMBERS) break;
        cache.delete(key);
        cachedNumbers -= value.length;
      }
    }
    return centroids;
  }

  return {
    /** Centroids of the federation's global versions (bounded: see {@link versionsToShow}) with the class table. */
    async centroids(federationId: string): Promise<CentroidHistory> {
      const federation = await deps.federations.get(federationId);
      const { k, codeDim, latestModelVersion: latest } = federation;
      const wanted = versionsToShow(latest, k * codeDim, CENTROID_NUMBERS_LIMIT);
      const rows = await prisma.globalModel.findMany({ where: { federationId, version: { in: wanted } }, orderBy: { version: 'asc' }, select: { version: true, roundNumber: true, sha256: true, createdAt: true } });
      const versions: CentroidHistory['versions'] = [];
      // One at a time: each read holds a whole model file in memory.
      for (const row of rows) {
        const flat = await cachedCentroids(row.sha256, k, codeDim);
        const centroids = Array.from({ length: k }, (_, c) => Array.from(flat.subarray(c * codeDim, (c + 1) * codeDim), rounded));
        versions.push({ version: row.version, round: row.roundNumber, createdAt: row.createdAt.toISOString(), centroids });
      }
      return { k, codeDim, latestVersion: latest, versions, omittedVersions: latest + 1 - versions.length, classes: classTable(k, await deps.classes.get(federationId)) };
    },

    /**
     * The numeric metrics sent with the federation's updates, newest rounds first up to
     * UPDATE_REPORTS_LIMIT, returned by round; only `participantId`'s own when given. Non-numeric
     * entries are dropped in the query, so a row is small whatever the participant sent.
     */
    async updates(federationId: string, options: { participantId?: string; sinceRound?: number } = {}): Promise<UpdateReports> {
      await deps.federations.get(federationId);
      const participantId = options.participantId ?? null;
      const sinceRound = options.sinceRound ?? 1;
      const rows = await prisma.$queryRaw<{ round: number; participant: string; enrolmentIndex: number; samples: number; receivedAt: Date; metrics: Record<string, number> | null }[]>`
        SELECT r."number" AS "round", p."name" AS "participant", p."enrolmentIndex" AS "enrolmentIndex", u."samples" AS "samples", u."receivedAt" AS "receivedAt",
          (SELECT jsonb_object_agg(e."key", e."value") FROM (
             SELECT "key", "value" FROM jsonb_each(CASE WHEN jsonb_typeof(u."metrics") = 'object' THEN u."metrics" ELSE '{}'::jsonb END)
             WHERE jsonb_typeof("value") = 'number' AND length("key") <= ${METRIC_NAME_MAX_LENGTH}
             ORDER BY "key" LIMIT ${METRICS_PER_UPDATE}) e) AS "metrics"
        FROM "Update" u JOIN "Round" r ON r."id" = u."roundId" JOIN "Participant" p ON p."id" = u."participantId"
        WHERE r."federationId" = ${federationId} AND r."number" >= ${sinceRound} AND (${participantId}::text IS NULL OR u."participantId" = ${participantId}::text)
        ORDER BY r."number" DESC, p."enrolmentIndex" ASC
        LIMIT ${UPDATE_REPORTS_LIMIT + 1}`;
      const truncated = rows.length > UPDATE_REPORTS_LIMIT;
      const kept = rows.slice(0, UPDATE_REPORTS_LIMIT).sort((a, b) => a.round - b.round || a.enrolmentIndex - b.enrolmentIndex);
      return {
        updates: kept.map((row) => ({
          round: Number(row.round),
          participant: row.participant,
          enrolmentIndex: Number(row.enrolmentIndex),
          samples: Number(row.samples),
          receivedAt: new Date(row.receivedAt).toISOString(),
          metrics: row.metrics ?? {},
        })),
        truncated,
      };
    },
  };
}

export type HistoryService = ReturnType<typeof createHistoryService>;
