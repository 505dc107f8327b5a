// Applies the SQL migrations of prisma/migrations (Prisma Migrate's folder layout) and records them in
// Prisma's own `_prisma_migrations` table, so `prisma migrate status` would read the same history.
// Prisma's CLI needs a schema engine that cannot be downloaded here; this runner needs only SQL.
//
// Safety: one runner at a time (Postgres advisory lock), each migration in its own transaction, and a
// migration whose file changed after it was applied stops the server (migrations are never edited).

import { createHash, randomUUID } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** The minimal SQL surface the runner needs (implemented for pg and PGlite in database.ts). */
export interface SqlExecutor {
  /** Runs statements without parameters (may contain several statements). */
  exec(sql: string): Promise<void>;
  query<T>(sql: string, params?: unknown[]): Promise<T[]>;
  /** Runs `work` in a transaction on one connection. */
  transaction<T>(work: (tx: SqlExecutor) => Promise<T>): Promise<T>;
}

export interface Migration {
  name: string;
  sql: string;
  checksum: string;
}

export class MigrationError extends Error {}

/** Arbitrary constant key of the advisory lock held while migrating. */
const MIGRATION_LOCK_KEY = 72707369;

export async function readMigrations(folder: string): Promise<Migration[]> {
  const entries = await readdir(folder, { withFileTypes: true });
  const names = entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  const migrations: Migration[] = [];
  for (const name of names) {
    const sql = await readFile(join(folder, name, 'migration.sql'), 'utf8');
    migrations.push({ name, sql, checksum: createHash('sha256').update(sql).digest('hex') });
  }
  return migrations;
}

const CREATE_TABLE = `CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id" VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum" VARCHAR(64) NOT NULL,
    "finished_at" TIMESTAMPTZ,
    "migration_name" VARCHAR(255) NOT NULL,
    "logs" TEXT,
    "rolled_back_at" TIMESTAMPTZ,
    "started_at" TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

/** Applies pending migrations in name order; returns the names applied now. */
export async function migrate(db: SqlExecutor, folder: string): Promise<string[]> {
  const migrations = await readMigrations(folder);
  return db.transaction(async (tx) => {
    // Transaction-scoped advisory lock: a second server waits here, then sees the work done.
    await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK_KEY]);
    await tx.exec(CREATE_TABLE);
    const applied = await tx.query<{ migration_name: string; checksum: string; finished_at: Date | null; rolled_back_at: Date | null }>(
      'SELECT migration_name, checksum, finished_at, rolled_back_at FROM "_prisma_migrations"',
    );
    const done = new Map(applied.filter((a) => a.finished_at !== null && a.rolled_back_at === null).map((a) => [a.migration_name, a.checksum]));
    const known = new Set(migrations.map((m) => m.name));
    const unknown = [...done.keys()].filter((name) => !known.has(name));
    if (unknown.length) throw new MigrationError(`the database has migrations this server does not know: ${unknown.join(', ')} (is the server older than the database?)`);
    const now: string[] = [];
    for (const migration of migrations) {
      const checksum = done.get(migration.name);
      if (checksum !== undefined) {
        if (checksum !== migration.checksum) throw new MigrationError(`migration ${migration.name} was edited after it was applied (checksum differs); add a new migration instead`);
        continue;
      }
      const id = randomUUID();
      await tx.query('INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at) VALUES ($1, $2, $3, now())', [id, migration.checksum, migration.name]);
      await tx.exec(migration.sql);
      await tx.query('UPDATE "_prisma_migrations" SET finished_at = now(), applied_steps_count = 1 WHERE id = $1', [id]);
      now.push(migration.name);
    }
    return now;
  });
}
