// Databases for tests: a fresh in-memory PGlite, and a fresh schema on the real Postgres
// (DATABASE_URL, else the CI server at 127.0.0.1:5432/test when it answers).

import { randomBytes } from 'node:crypto';
import { openDatabase, type Database } from '../db/database.js';

export const POSTGRES_URL = process.env.DATABASE_URL ?? 'postgresql://postgres@127.0.0.1:5432/test';

/** True when the Postgres server answers; tests on Postgres are skipped (with a visible reason) otherwise. */
export async function postgresAvailable(): Promise<boolean> {
  const { default: pg } = await import('pg');
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 2000 });
  try {
    await client.connect();
    await client.end();
    return true;
  } catch {
    return false;
  }
}

export interface TestDatabase {
  db: Database;
  /** Drops what the test created. */
  dispose(): Promise<void>;
}

/** An in-memory PGlite database (its file blob store is a temporary folder, removed on close). */
export async function freshPglite(): Promise<TestDatabase> {
  const db = await openDatabase({ pgliteDir: 'memory://' });
  return { db, dispose: () => db.close() };
}

/** A new schema on the Postgres server, used through search_path, with the Postgres blob store; dropped by dispose(). */
export async function freshPostgres(): Promise<TestDatabase> {
  const { default: pg } = await import('pg');
  const schema = `test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  await admin.query(`CREATE SCHEMA "${schema}"`);
  const url = new URL(POSTGRES_URL);
  url.searchParams.set('schema', schema);
  const db = await openDatabase({ databaseUrl: url.toString() });
  return {
    db,
    dispose: async () => {
      await db.close();
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
      await admin.end();
    },
  };
}
