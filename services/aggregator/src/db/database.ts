// Database connections: Postgres through @prisma/adapter-pg when DATABASE_URL is set, else an embedded
// PGlite database in a local folder (so the server runs on a machine with no database installed).
// Both give a Prisma client (generated into src/generated) and a plain SQL executor for migrations.

import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import { PrismaPGlite } from 'pglite-prisma-adapter';
import { PrismaPg } from '@prisma/adapter-pg';
import { PrismaClient } from '../generated/prisma/client.js';
import { migrate, type SqlExecutor } from './migrate.js';
import type { BlobStore } from '../storage/blob-store.js';
import { openFileBlobStore } from '../storage/file-blob-store.js';
import { postgresBlobStore } from '../storage/postgres-blob-store.js';

/** prisma/migrations of the repository (two levels above services/aggregator/src or dist). */
export const MIGRATIONS_FOLDER = fileURLToPath(new URL('../../../../prisma/migrations', import.meta.url));

export interface Database {
  kind: 'postgres' | 'pglite';
  prisma: PrismaClient;
  sql: SqlExecutor;
  /** Where weight files live (DESIGN "Storage"). */
  blobs: BlobStore;
  /** Applies pending migrations; returns their names. */
  migrate(): Promise<string[]>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** postgres:// URL; when absent an embedded PGlite database is used. */
  databaseUrl?: string;
  /** PGlite data folder (default ./.fuss/db); `memory://` keeps it in memory (tests). */
  pgliteDir?: string;
  migrationsFolder?: string;
  /** `file` (default without databaseUrl) or `postgres` (default with it). */
  blobStore?: 'file' | 'postgres';
  /** Folder of the file blob store (default ./.fuss/blobs). */
  blobDir?: string;
}

function pgliteExecutor(pg: PGlite): SqlExecutor {
  const wrap = (q: Pick<PGlite, 'exec' | 'query'>): SqlExecutor => ({
    exec: async (sql) => {
      await q.exec(sql);
    },
    query: async <T>(sql: string, params: unknown[] = []) => (await q.query<T>(sql, params)).rows,
    transaction: (work) => pg.transaction((tx) => work(wrap(tx as unknown as Pick<PGlite, 'exec' | 'query'>))),
  });
  return wrap(pg);
}

async function pgExecutor(databaseUrl: string): Promise<{ executor: SqlExecutor; pool: import('pg').Pool; end: () => Promise<void> }> {
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({ connectionString: databaseUrl, max: 4 });
  const executor: SqlExecutor = {
    exec: async (sql) => {
      await pool.query(sql);
    },
    query: async <T>(sql: string, params: unknown[] = []) => (await pool.query(sql, params)).rows as T[],
    transaction: async (work) => {
      const client = await pool.connect();
      const tx: SqlExecutor = {
        exec: async (sql) => {
          await client.query(sql);
        },
        query: async <T>(sql: string, params: unknown[] = []) => (await client.query(sql, params)).rows as T[],
        transaction: (inner) => inner(tx),
      };
      try {
        await client.query('BEGIN');
        const result = await work(tx);
        await client.query('COMMIT');
        return result;
      } catch (err) {
        await client.query('ROLLBACK');
        throw err;
      } finally {
        client.release();
      }
    },
  };
  return { executor, pool, end: () => pool.end() };
}

export async function openDatabase(options: DatabaseOptions = {}): Promise<Database> {
  const migrationsFolder = options.migrationsFolder ?? MIGRATIONS_FOLDER;
  if (options.databaseUrl) {
    // Prisma's convention: ?schema=NAME selects a Postgres schema (default public). node-postgres
    // does not know the parameter, so it becomes a search_path for the migration connections.
    const url = new URL(options.databaseUrl);
    const schema = url.searchParams.get('schema') ?? undefined;
    url.searchParams.delete('schema');
    // Raw SQL (migrations, guarded inserts) resolves table names through search_path.
    if (schema) url.searchParams.set('options', `-c search_path="${schema}"`);
    const { executor, pool, end } = await pgExecutor(url.toString());
    const prisma = new PrismaClient({ adapter: new PrismaPg({ connectionString: url.toString() }, schema ? { schema } : undefined) });
    const blobs = (options.blobStore ?? 'postgres') === 'postgres' ? postgresBlobStore(executor, pool) : await openFileBlobStore(options.blobDir ?? '.fuss/blobs');
    return {
      kind: 'postgres',
      prisma,
      sql: executor,
      blobs,
      migrate: () => migrate(executor, migrationsFolder),
      close: async () => {
        await prisma.$disconnect();
        await end();
      },
    };
  }
  const dir = options.pgliteDir ?? '.fuss/db';
  if (!dir.startsWith('memory://')) await mkdir(dir, { recursive: true });
  const pg = new PGlite(dir);
  await pg.waitReady;
  const executor = pgliteExecutor(pg);
  const prisma = new PrismaClient({ adapter: new PrismaPGlite(pg) });
  if (options.blobStore === 'postgres') throw new Error('the postgres blob store needs a Postgres database (DATABASE_URL)');
  // An in-memory database gets a temporary blob folder of its own, removed on close.
  const temporaryBlobs = dir.startsWith('memory://') && !options.blobDir ? await mkdtemp(join(tmpdir(), 'fuss-blobs-')) : undefined;
  const blobs = await openFileBlobStore(options.blobDir ?? temporaryBlobs ?? '.fuss/blobs');
  return {
    kind: 'pglite',
    prisma,
    sql: executor,
    blobs,
    migrate: () => migrate(executor, migrationsFolder),
    close: async () => {
      await prisma.$disconnect();
      await pg.close();
      if (temporaryBlobs) await rm(temporaryBlobs, { recursive: true, force: true });
    },
  };
}
