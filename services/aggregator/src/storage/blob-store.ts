// Content-addressed storage of weight files (updates and global models): each blob is named by the
// sha256 of its bytes. The database keeps state and hashes; the bytes live here, so that rows stay
// small (the embedded PGlite database runs in the server's own thread) and storage can be shared by
// replicas (the Postgres store).
//
// Order of writes, so that a crash never leaves an accepted update without its bytes: the blob is made
// durable first (put resolves after fsync), then the row naming it is committed. A crash in between
// leaves an unreferenced blob, never served (blobs are only reached through rows) and deleted by
// collectGarbage once older than its grace period.

import { createHash } from 'node:crypto';
import { FussError } from '@fuss/core';

export interface BlobStore {
  readonly kind: 'file' | 'postgres';
  /**
   * Stores bytes under their sha256 (returned); durable when the promise resolves. Idempotent.
   * `knownSha256` skips hashing again when the caller has just computed it (the model worker).
   */
  put(bytes: Uint8Array, knownSha256?: string): Promise<string>;
  /** A blob whose bytes arrive in pieces (an upload); see BlobWrite. */
  begin(): BlobWrite;
  /** The bytes of a blob; BlobMissingError when there is none. */
  get(sha256: string): Promise<Uint8Array>;
  has(sha256: string): Promise<boolean>;
  delete(sha256: string): Promise<void>;
  /** Names of blobs stored before `before` (garbage collection candidates). */
  listOlderThan(before: Date): Promise<string[]>;
  /** Number and total size of the stored blobs. */
  usage(): Promise<{ blobs: number; bytes: number }>;
}

/**
 * A blob being written as its bytes arrive: `write` the pieces in order, then `commit` with their
 * sha256 and all the bytes (durable when it resolves), or `abort`. The file store writes each piece to
 * a temporary file at once, so only fsync and rename are left at the end; the Postgres store inserts
 * the row at commit (a row is one statement), from the bytes the receiver holds anyway.
 */
export interface BlobWrite {
  write(piece: Uint8Array): Promise<void>;
  commit(sha256: string, bytes: Uint8Array): Promise<void>;
  /** Drops what was written; safe to call after commit (it then does nothing) and more than once. */
  abort(): Promise<void>;
}

/** A row names a blob the store does not have (deleted by hand, or a store that was lost). */
export class BlobMissingError extends FussError {
  constructor(sha256: string) {
    super(`weights ${sha256.slice(0, 12)}... are missing from the blob store`, { status: 500, type: 'blob-missing' });
  }
}

export const SHA256_PATTERN = /^[0-9a-f]{64}$/;

export function sha256Of(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

export function checkBlobName(sha256: string): void {
  if (!SHA256_PATTERN.test(sha256)) throw new RangeError(`not a blob name: ${JSON.stringify(sha256).slice(0, 80)}`);
}
