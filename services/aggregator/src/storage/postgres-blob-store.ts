// Blobs as rows of the "Blob" table on Postgres, so that several server replicas on one database share
// them. Each put is one INSERT (durable at commit); reads go through the same pool.

import type { SqlExecutor } from '../db/migrate.js';
import { BlobMissingError, checkBlobName, sha256Of, type BlobStore } from './blob-store.js';

export function postgresBlobStore(sql: SqlExecutor): BlobStore {
  return {
    kind: 'postgres',
    async put(bytes, knownSha256) {
      const sha256 = knownSha256 ?? sha256Of(bytes);
      await sql.query('INSERT INTO "Blob" ("sha256", "size", "bytes") VALUES ($1, $2, $3) ON CONFLICT ("sha256") DO NOTHING', [sha256, bytes.byteLength, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
      return sha256;
    },
    async get(sha256) {
      checkBlobName(sha256);
      const rows = await sql.query<{ bytes: Buffer }>('SELECT "bytes" FROM "Blob" WHERE "sha256" = $1', [sha256]);
      if (rows.length === 0) throw new BlobMissingError(sha256);
      const bytes = rows[0].bytes;
      return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    async has(sha256) {
      checkBlobName(sha256);
      return (await sql.query('SELECT 1 FROM "Blob" WHERE "sha256" = $1', [sha256])).length > 0;
    },
    async delete(sha256) {
      checkBlobName(sha256);
      await sql.query('DELETE FROM "Blob" WHERE "sha256" = $1', [sha256]);
    },
    async listOlderThan(before) {
      return (await sql.query<{ sha256: string }>('SELECT "sha256" FROM "Blob" WHERE "createdAt" < $1', [before])).map((r) => r.sha256);
    },
    async usage() {
      const [row] = await sql.query<{ blobs: string; bytes: string | null }>('SELECT count(*) AS blobs, sum("size") AS bytes FROM "Blob"');
      return { blobs: Number(row.blobs), bytes: Number(row.bytes ?? 0) };
    },
  };
}
