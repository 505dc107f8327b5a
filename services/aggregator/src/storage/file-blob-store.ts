// Blobs as files: <dir>/<first two hex digits>/<sha256>. Writes go to <dir>/tmp (an upload's as its bytes
// arrive), are fsynced, renamed into place and the folder is fsynced, so a blob is either complete under
// its name or absent.

import { mkdir, open, readdir, readFile, rename, rm, stat, unlink, utimes, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { BlobMissingError, checkBlobName, sha256Of, type BlobStore, type BlobWrite } from './blob-store.js';

export async function openFileBlobStore(dir: string): Promise<BlobStore> {
  const tmp = join(dir, 'tmp');
  await mkdir(tmp, { recursive: true });
  // Temporary files of writes interrupted by a crash.
  for (const name of await readdir(tmp)) await rm(join(tmp, name), { force: true });
  const pathOf = (sha256: string) => {
    checkBlobName(sha256);
    return join(dir, sha256.slice(0, 2), sha256);
  };

  async function syncFolder(path: string) {
    const handle = await open(path, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  function begin(): BlobWrite {
    const temporary = join(tmp, `upload.${randomBytes(8).toString('hex')}`);
    let handle: FileHandle | undefined;
    let written = 0;
    let done = false;
    const close = async () => {
      const open = handle;
      handle = undefined;
      await open?.close();
    };
    return {
      async write(piece) {
        handle ??= await open(temporary, 'wx', 0o600);
        await handle.write(piece, 0, piece.byteLength, written);
        written += piece.byteLength;
      },
      async commit(sha256, bytes) {
        const target = pathOf(sha256);
        if (written !== bytes.byteLength) throw new Error(`blob ${sha256.slice(0, 12)}...: ${written} bytes written, ${bytes.byteLength} committed`);
        const existing = await stat(target).catch(() => undefined);
        if (existing?.size === bytes.byteLength) {
          // Stored already: fresh again, so garbage collection's grace period protects it until its row commits.
          const now = new Date();
          await utimes(target, now, now);
          await close();
          await rm(temporary, { force: true });
        } else {
          handle ??= await open(temporary, 'wx', 0o600);
          await handle.sync();
          await close();
          const folder = join(dir, sha256.slice(0, 2));
          await mkdir(folder, { recursive: true });
          await rename(temporary, target);
          await syncFolder(folder);
        }
        done = true;
      },
      async abort() {
        await close();
        if (!done) await rm(temporary, { force: true });
        done = true;
      },
    };
  }

  return {
    kind: 'file',
    async put(bytes, knownSha256) {
      const sha256 = knownSha256 ?? sha256Of(bytes);
      const write = begin();
      try {
        await write.write(bytes);
        await write.commit(sha256, bytes);
      } finally {
        await write.abort();
      }
      return sha256;
    },
    begin,
    async get(sha256) {
      try {
        const bytes = await readFile(pathOf(sha256));
        return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new BlobMissingError(sha256);
        throw err;
      }
    },
    async has(sha256) {
      try {
        await stat(pathOf(sha256));
        return true;
      } catch {
        return false;
      }
    },
    async delete(sha256) {
      try {
        await unlink(pathOf(sha256));
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
    },
    async listOlderThan(before) {
      const names: string[] = [];
      for (const folder of await readdir(dir)) {
        if (!/^[0-9a-f]{2}$/.test(folder)) continue;
        for (const name of await readdir(join(dir, folder))) {
          const info = await stat(join(dir, folder, name)).catch(() => undefined);
          if (info && info.mtime < before) names.push(name);
        }
      }
      return names;
    },
    async usage() {
      let blobs = 0;
      let bytes = 0;
      for (const folder of await readdir(dir)) {
        if (!/^[0-9a-f]{2}$/.test(folder)) continue;
        for (const name of await readdir(join(dir, folder))) {
          const info = await stat(join(dir, folder, name)).catch(() => undefined);
          if (!info) continue;
          blobs++;
          bytes += info.size;
        }
      }
      return { blobs, bytes };
    },
  };
}
