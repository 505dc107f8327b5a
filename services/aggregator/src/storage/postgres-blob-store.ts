// Blobs as rows of the "Blob" table on Postgres, so that several server replicas on one database share
// them. Each put is one INSERT (durable at commit; node-postgres sends a Buffer parameter as binary).
//
// Reads use `COPY ... TO STDOUT (FORMAT binary)` (pg-copy-streams), not SELECT: node-postgres reads
// results in text format only, so a SELECT of a bytea makes Postgres hex-encode it and the client decode
// twice its size from a string (58 ms per 2.8 MB update here, on the event loop), while COPY sends the
// raw bytes (12 ms). The blob name is inlined into the COPY statement (COPY takes no parameters): it
// is checked against /^[0-9a-f]{64}$/ first.

import type { Pool } from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import type { SqlExecutor } from '../db/migrate.js';
import { BlobMissingError, checkBlobName, sha256Of, type BlobStore } from './blob-store.js';

/** `sql` runs the plain statements; `pool` (the one behind `sql`) lends a connection for each COPY read. */
export function postgresBlobStore(sql: SqlExecutor, pool: Pool): BlobStore {
  const insert = async (sha256: string, bytes: Uint8Array) => {
    await sql.query('INSERT INTO "Blob" ("sha256", "size", "bytes") VALUES ($1, $2, $3) ON CONFLICT ("sha256") DO NOTHING', [sha256, bytes.byteLength, Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)]);
  };
  return {
    kind: 'postgres',
    async put(bytes, knownSha256) {
      const sha256 = knownSha256 ?? sha256Of(bytes);
      await insert(sha256, bytes);
      return sha256;
    },
    // The row is one INSERT at commit; the pieces are in the caller's buffer meanwhile.
    begin: () => ({ write: async () => undefined, commit: insert, abort: async () => undefined }),
    async get(sha256) {
      checkBlobName(sha256);
      const client = await pool.connect();
      try {
        const stream = client.query(copyTo(`COPY (SELECT "bytes" FROM "Blob" WHERE "sha256" = '${sha256}') TO STDOUT (FORMAT binary)`));
        const parser = new BinaryCopyField();
        for await (const chunk of stream) parser.push(chunk as Buffer);
        const bytes = parser.finish();
        if (!bytes) throw new BlobMissingError(sha256);
        return bytes;
      } finally {
        client.release();
      }
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

const COPY_SIGNATURE = Buffer.from('PGCOPY\n\xff\r\n\0', 'latin1');

/**
 * The single field of at most one row of a binary COPY (Postgres docs, "COPY: Binary Format"):
 * signature (11 bytes), flags (int32), header extension (int32 length + bytes), then per row an int16
 * field count and per field an int32 length (-1: NULL) and the bytes; an int16 -1 ends the data.
 * The field's bytes are copied once into a buffer of their exact size, as they arrive.
 */
export class BinaryCopyField {
  private head: Buffer = Buffer.alloc(0);
  private out: Uint8Array | undefined;
  private filled = 0;
  private headerRead = false;

  push(chunk: Buffer): void {
    if (this.out && this.filled < this.out.byteLength) {
      const take = Math.min(chunk.byteLength, this.out.byteLength - this.filled);
      this.out.set(chunk.subarray(0, take), this.filled);
      this.filled += take;
      chunk = chunk.subarray(take);
      if (chunk.byteLength === 0) return;
    }
    // Header, row headers and the trailer: small, parsed from an accumulated buffer.
    this.head = this.head.byteLength ? Buffer.concat([this.head, chunk]) : chunk;
    this.parse();
  }

  private parse(): void {
    for (;;) {
      if (!this.headerRead) {
        if (this.head.byteLength < 19) return;
        if (!this.head.subarray(0, 11).equals(COPY_SIGNATURE)) throw new Error('not a binary COPY stream');
        const extension = this.head.readUInt32BE(15);
        if (this.head.byteLength < 19 + extension) return;
        this.head = this.head.subarray(19 + extension);
        this.headerRead = true;
      }
      if (this.head.byteLength < 2) return;
      const fields = this.head.readInt16BE(0);
      if (fields === -1) {
        this.head = this.head.subarray(2);
        return; // trailer
      }
      if (fields !== 1 || this.out) throw new Error('expected one row of one field in the binary COPY stream');
      if (this.head.byteLength < 6) return;
      const length = this.head.readInt32BE(2);
      if (length < 0) throw new Error('the blob row has no bytes (NULL)');
      this.out = new Uint8Array(length);
      const available = this.head.subarray(6, 6 + length);
      this.out.set(available);
      this.filled = available.byteLength;
      this.head = this.head.subarray(6 + available.byteLength);
      if (this.filled < length) return;
    }
  }

  /** The field's bytes, or undefined when the query gave no row. */
  finish(): Uint8Array | undefined {
    if (this.out && this.filled !== this.out.byteLength) throw new Error('the binary COPY stream ended inside the blob');
    return this.out;
  }
}
