// The blob stores (files, and the Postgres table), garbage collection of blobs no row names, and the
// move of weights written into rows before the blob store existed.

import { afterEach, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readdir, rm, writeFile, utimes } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { MIGRATIONS_FOLDER, openDatabase } from '../db/database.js';
import { moveLegacyWeights } from '../db/legacy-weights.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from '../test-support/databases.js';
import { BlobMissingError, sha256Of } from './blob-store.js';
import { BinaryCopyField } from './postgres-blob-store.js';
import { openFileBlobStore } from './file-blob-store.js';
import { collectGarbage } from './garbage.js';

const onPostgres = await postgresAvailable();
const folders: string[] = [];
let current: TestDatabase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
  for (const folder of folders.splice(0)) await rm(folder, { recursive: true, force: true });
});

for (const [label, fresh] of [['file', freshPglite], ['Postgres', freshPostgres]] as const) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`the ${label} blob store`, () => {
    it('stores bytes under their sha256, idempotently, and reads, lists and deletes them', async () => {
      current = await fresh();
      await current.db.migrate();
      const { blobs } = current.db;
      expect(blobs.kind).toBe(label === 'file' ? 'file' : 'postgres');
      const bytes = new Uint8Array([1, 2, 3, 250]);
      const sha256 = await blobs.put(bytes);
      expect(sha256).toBe(sha256Of(bytes));
      expect(await blobs.put(bytes)).toBe(sha256);
      expect(Array.from(await blobs.get(sha256))).toEqual([1, 2, 3, 250]);
      expect(await blobs.has(sha256)).toBe(true);
      expect(await blobs.usage()).toEqual({ blobs: 1, bytes: 4 });
      expect(await blobs.listOlderThan(new Date(Date.now() - 60_000))).toEqual([]);
      expect(await blobs.listOlderThan(new Date(Date.now() + 60_000))).toEqual([sha256]);
      await blobs.delete(sha256);
      await blobs.delete(sha256);
      expect(await blobs.has(sha256)).toBe(false);
      await expect(blobs.get(sha256)).rejects.toBeInstanceOf(BlobMissingError);
      await expect(blobs.get('../../etc/passwd')).rejects.toThrow(/not a blob name/);
    });

    it('returns large and empty blobs byte for byte, each in a buffer of its own', async () => {
      current = await fresh();
      await current.db.migrate();
      const { blobs } = current.db;
      // 3 MB: many CopyData messages on Postgres.
      const large = randomBytes(3_000_003);
      const empty = new Uint8Array(0);
      const [largeSha, emptySha] = [await blobs.put(large), await blobs.put(empty)];
      const [largeBack, emptyBack] = await Promise.all([blobs.get(largeSha), blobs.get(emptySha)]);
      expect(Buffer.from(largeBack).equals(large)).toBe(true);
      expect(largeBack.byteOffset).toBe(0);
      expect(largeBack.buffer.byteLength).toBe(large.byteLength);
      expect(emptyBack.byteLength).toBe(0);
    });

    it('collects blobs that no update or model names once they are older than the grace period', async () => {
      current = await fresh();
      await current.db.migrate();
      const { db } = current;
      // An upload that crashed between its blob and its row: the blob is an orphan.
      const orphan = await db.blobs.put(new Uint8Array([9, 9, 9]));
      const named = await db.blobs.put(new Uint8Array([7, 7]));
      const federation = await db.prisma.federation.create({ data: { name: 'f', backboneId: 'b', backboneSha256: 'a'.repeat(64), featureKey: 'k', channels: 8, codeDim: 4, k: 3, strategy: 'fedavg', totalRounds: 1, localSteps: 1, minParticipants: 1, maxParticipants: 1, roundDeadlineSeconds: 60 } });
      await db.prisma.globalModel.create({ data: { federationId: federation.id, version: 0, roundNumber: 0, sha256: named, size: 2 } });
      expect(await collectGarbage(db)).toBe(0); // both are younger than the grace period
      expect(await collectGarbage(db, new Date(Date.now() + 60_000))).toBe(1);
      expect(await db.blobs.has(orphan)).toBe(false);
      expect(await db.blobs.has(named)).toBe(true);
    });
  });
}

describe('the binary COPY reader of the Postgres blob store', () => {
  const signature = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');
  const int16 = (v: number) => Buffer.from([(v >> 8) & 0xff, v & 0xff]);
  const int32 = (v: number) => { const b = Buffer.alloc(4); b.writeInt32BE(v); return b; };
  const stream = (rows: (Buffer | null)[], extension = Buffer.alloc(0)) =>
    Buffer.concat([signature, int32(0), int32(extension.byteLength), extension, ...rows.flatMap((r) => [int16(1), int32(r ? r.byteLength : -1), r ?? Buffer.alloc(0)]), int16(-1)]);
  const read = (bytes: Buffer, chunk: number) => {
    const field = new BinaryCopyField();
    for (let i = 0; i < bytes.byteLength; i += chunk) field.push(bytes.subarray(i, i + chunk));
    return field.finish();
  };

  it('reads the one field of one row however the stream is cut into chunks', () => {
    const value = Buffer.from([0, 1, 2, 3, 255, 254, 7, 8, 9]);
    const bytes = stream([value], Buffer.from([42, 43]));
    for (let chunk = 1; chunk <= bytes.byteLength; chunk++) expect(Buffer.from(read(bytes, chunk)!)).toEqual(value);
  });

  it('gives undefined for no row, and refuses NULL, several rows, a foreign or cut stream', () => {
    expect(read(stream([]), 3)).toBeUndefined();
    expect(() => read(stream([null]), 64)).toThrow(/NULL/);
    expect(() => read(stream([Buffer.from([1]), Buffer.from([2])]), 64)).toThrow(/one row/);
    expect(() => read(Buffer.from('COPY 1 not binary at all'), 64)).toThrow(/not a binary COPY/);
    expect(() => read(stream([Buffer.alloc(100)]).subarray(0, 60), 7)).toThrow(/ended inside/);
  });
});

describe('the file blob store', () => {
  it('removes temporary files of writes interrupted by a crash, and refreshes the age of a blob put again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'fuss-blobs-'));
    folders.push(dir);
    let store = await openFileBlobStore(dir);
    const sha256 = await store.put(new Uint8Array([1]));
    await writeFile(join(dir, 'tmp', `${sha256}.half-written`), 'partial');
    store = await openFileBlobStore(dir);
    expect(await readdir(join(dir, 'tmp'))).toEqual([]);
    const old = new Date(Date.now() - 3_600_000);
    await utimes(join(dir, sha256.slice(0, 2), sha256), old, old);
    expect(await store.listOlderThan(new Date(Date.now() - 60_000))).toEqual([sha256]);
    await store.put(new Uint8Array([1]));
    expect(await store.listOlderThan(new Date(Date.now() - 60_000))).toEqual([]);
  });
});

describe('weights stored in rows before the blob store', () => {
  it('move into the store at start and leave the rows without bytes', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'fuss-migrations-'));
    folders.push(folder);
    const names = ['20261127220000_init', '20261128000000_enrolment_index_and_aggregation_attempts'];
    for (const name of names) await cp(join(MIGRATIONS_FOLDER, name), join(folder, name), { recursive: true });
    const db = await openDatabase({ pgliteDir: 'memory://', migrationsFolder: folder });
    current = { db, dispose: () => db.close() };
    await db.migrate();
    const model = new Uint8Array([5, 6, 7, 8]);
    const update = new Uint8Array([1, 2]);
    await db.sql.query(`INSERT INTO "Federation" ("id","name","backboneId","backboneSha256","featureKey","channels","codeDim","k","strategy","totalRounds","localSteps","minParticipants","maxParticipants","roundDeadlineSeconds") VALUES ('f1','f','b','${'a'.repeat(64)}','k',8,4,3,'fedavg',2,5,1,3,60)`);
    await db.sql.query(`INSERT INTO "GlobalModel" ("id","federationId","version","roundNumber","sha256","weights") VALUES ('m0','f1',0,0,$1,$2)`, [sha256Of(model), Buffer.from(model)]);
    await db.sql.query(`INSERT INTO "Participant" ("id","federationId","name","tokenHash","enrolmentIndex") VALUES ('p1','f1','p','h',0)`);
    await db.sql.query(`INSERT INTO "Round" ("id","federationId","number","baseVersion","deadlineAt") VALUES ('r1','f1',1,0,now())`);
    await db.sql.query(`INSERT INTO "Update" ("id","roundId","participantId","samples","sha256","weights") VALUES ('u1','r1','p1',3,$1,$2)`, [sha256Of(update), Buffer.from(update)]);
    await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
    expect(await db.migrate()).toEqual(['20261202000000_blob_store_and_leases', '20261202010000_robust_aggregation_and_participant_activity', '20261202120000_classes', '20261203000000_federation_mechanisms']);
    expect(await moveLegacyWeights(db)).toBe(2);
    expect(await moveLegacyWeights(db)).toBe(0);
    expect(Array.from(await db.blobs.get(sha256Of(model)))).toEqual([5, 6, 7, 8]);
    expect(Array.from(await db.blobs.get(sha256Of(update)))).toEqual([1, 2]);
    const rows = await db.sql.query<{ weights: Buffer | null; size: number }>('SELECT "weights", "size" FROM "GlobalModel" UNION ALL SELECT "weights", "size" FROM "Update"');
    expect(rows).toEqual([{ weights: null, size: 4 }, { weights: null, size: 2 }]);
  });
});
