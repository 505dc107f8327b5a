// An upload's body read as it arrives (issue #14): each piece is copied into one buffer of the declared
// length (the only copy of the model the request holds), hashed, checked (ModelStreamCheck: the header
// as soon as it is complete, then the values) and written to the blob store in pieces of WRITE_PIECE_BYTES.
// When the last byte lands the update is hashed, fully checked and on disk but for fsync and rename.
// The work per piece is small (a 64 kB piece: ~40 us of SHA-256, ~10 us of checks), so it runs on the
// event loop between reads; a problem stops reading at once (the rest of the body is then discarded for
// at most a second, plugins/problem-details.ts).

import { createHash } from 'node:crypto';
import { FussError, ModelStreamCheck, type ModelExpectations, type ModelHeader } from '@fuss/core';
import type { BlobStore, BlobWrite } from '../storage/blob-store.js';

/** An update's header is about 1 kB; a longer one is refused before it is parsed. */
export const UPDATE_HEADER_LIMIT_BYTES = 64 * 1024;
/** The blob store is written once this much has arrived since its last write (and at the end). */
export const WRITE_PIECE_BYTES = 1 << 20;

export interface ReceivedUpdate {
  bytes: Uint8Array;
  sha256: string;
  header: ModelHeader;
  /** The blob's write, not yet committed: the caller commits it (before the row naming it) or aborts it. */
  blob: BlobWrite;
}

/**
 * Reads an update of `length` bytes (its Content-Length, already checked against the federation's
 * limit) from `body`. Throws a FussError (4xx) for a body that is not a valid update for `expect`, or
 * that ends before `length` bytes; the blob's write is then aborted.
 */
export async function receiveUpdate(body: AsyncIterable<Uint8Array>, length: number, expect: ModelExpectations, blobs: BlobStore): Promise<ReceivedUpdate> {
  const bytes = new Uint8Array(length);
  const check = new ModelStreamCheck(bytes, { ...expect, maxHeaderBytes: UPDATE_HEADER_LIMIT_BYTES }, 'update');
  const hash = createHash('sha256');
  const blob = blobs.begin();
  let received = 0;
  let written = 0;
  try {
    for await (const piece of body) {
      if (received + piece.byteLength > length) throw new FussError(`the body is longer than its Content-Length of ${length} bytes`, { status: 400, type: 'bad-length' });
      bytes.set(piece, received);
      received += piece.byteLength;
      hash.update(piece);
      check.advance(received);
      if (received - written >= WRITE_PIECE_BYTES) {
        await blob.write(bytes.subarray(written, received));
        written = received;
      }
    }
    if (received < length) throw new FussError(`the body ended after ${received} of its ${length} bytes`, { status: 400, type: 'bad-length' });
    const header = check.finish();
    if (written < received) await blob.write(bytes.subarray(written, received));
    return { bytes, sha256: hash.digest('hex'), header, blob };
  } catch (err) {
    await blob.abort();
    // The client went away mid-body (its connection reset): nobody reads the answer, but it is its doing.
    if (!(err instanceof FussError) && ((err as NodeJS.ErrnoException).code === 'ECONNRESET' || (err as Error).message === 'aborted')) {
      throw new FussError(`the upload was cut off after ${received} of its ${length} bytes`, { status: 400, type: 'bad-length' });
    }
    throw err;
  }
}
