// Rows written before the blob store held their weight bytes in a `weights` column. At start the
// server moves them into the store, one row at a time (bounded memory), then clears the column; a
// crash half way leaves rows that are simply moved again on the next start (puts are idempotent).

import type { Database } from './database.js';

export async function moveLegacyWeights(db: Pick<Database, 'prisma' | 'blobs'>): Promise<number> {
  let moved = 0;
  for (;;) {
    const update = await db.prisma.update.findFirst({ where: { weights: { not: null } }, select: { id: true, sha256: true, weights: true } });
    if (!update) break;
    await db.blobs.put(update.weights!);
    await db.prisma.update.update({ where: { id: update.id }, data: { weights: null, size: update.weights!.byteLength }, select: { id: true } });
    moved++;
  }
  for (;;) {
    const model = await db.prisma.globalModel.findFirst({ where: { weights: { not: null } }, select: { id: true, weights: true } });
    if (!model) break;
    await db.blobs.put(model.weights!);
    await db.prisma.globalModel.update({ where: { id: model.id }, data: { weights: null, size: model.weights!.byteLength }, select: { id: true } });
    moved++;
  }
  return moved;
}
