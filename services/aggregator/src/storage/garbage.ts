// Deletes blobs that no row names (an update, a model, or a model's server optimiser state): bytes of an upload or aggregation that crashed before its row
// committed. Only blobs older than a grace period are considered, so a blob whose row is about to
// commit is never taken (put refreshes a blob's age).

import type { PrismaClient } from '../generated/prisma/client.js';
import type { BlobStore } from './blob-store.js';

export const GARBAGE_GRACE_MS = 60 * 60 * 1000;

export async function collectGarbage(deps: { prisma: PrismaClient; blobs: BlobStore }, before: Date = new Date(Date.now() - GARBAGE_GRACE_MS)): Promise<number> {
  const candidates = await deps.blobs.listOlderThan(before);
  let deleted = 0;
  for (const sha256 of candidates) {
    const [updates, models] = await Promise.all([
      deps.prisma.update.count({ where: { sha256, prunedAt: null } }),
      deps.prisma.globalModel.count({ where: { OR: [{ sha256 }, { serverStateSha256: sha256 }] } }),
    ]);
    if (updates === 0 && models === 0) {
      await deps.blobs.delete(sha256);
      deleted++;
    }
  }
  return deleted;
}
