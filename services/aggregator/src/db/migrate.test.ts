// The migration runner on both databases, and the drift check between prisma/schema.prisma and what
// the migrations create.

import { afterEach, describe, expect, it } from 'vitest';
import { cp, mkdtemp, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { MIGRATIONS_FOLDER, openDatabase } from './database.js';
import { freshPglite, freshPostgres, postgresAvailable, type TestDatabase } from '../test-support/databases.js';

const MIGRATION_NAMES = ['20261127220000_init', '20261128000000_enrolment_index_and_aggregation_attempts', '20261202000000_blob_store_and_leases', '20261202010000_robust_aggregation_and_participant_activity', '20261202120000_classes', '20261203000000_federation_mechanisms'];
const SCHEMA_FILE = fileURLToPath(new URL('../../../../prisma/schema.prisma', import.meta.url));
const onPostgres = await postgresAvailable();
if (!onPostgres) console.warn('Postgres at DATABASE_URL / 127.0.0.1:5432 is not reachable: Postgres cases are skipped');

interface SchemaColumn {
  table: string;
  column: string;
  type: string;
  nullable: boolean;
}

const PRISMA_TO_POSTGRES: Record<string, string> = {
  String: 'text',
  Int: 'integer',
  Boolean: 'boolean',
  DateTime: 'timestamp without time zone',
  Json: 'jsonb',
  Bytes: 'bytea',
};

/** Scalar columns and unique keys declared in schema.prisma (relation fields are skipped). */
function parseSchema(text: string): { columns: SchemaColumn[]; uniques: string[] } {
  const columns: SchemaColumn[] = [];
  const uniques: string[] = [];
  for (const match of text.matchAll(/^model (\w+) \{([\s\S]*?)^\}/gm)) {
    const [, table, body] = match;
    for (const line of body.split('\n')) {
      const trimmed = line.trim();
      const composite = /^@@unique\(\[([^\]]+)\]\)/.exec(trimmed);
      if (composite) uniques.push(`${table}(${composite[1].split(',').map((s) => s.trim()).join(',')})`);
      const field = /^(\w+)\s+(\w+)(\?|\[\])?(.*)$/.exec(trimmed);
      if (!field || trimmed.startsWith('//') || trimmed.startsWith('@@')) continue;
      const [, name, type, modifier, rest] = field;
      if (!(type in PRISMA_TO_POSTGRES) || modifier === '[]') continue;
      columns.push({ table, column: name, type: PRISMA_TO_POSTGRES[type], nullable: modifier === '?' });
      if (/@unique\b/.test(rest)) uniques.push(`${table}(${name})`);
    }
  }
  return { columns, uniques };
}

const cases: [string, () => Promise<TestDatabase>][] = [
  ['PGlite', freshPglite],
  ['Postgres', freshPostgres],
];

let current: TestDatabase | undefined;
afterEach(async () => {
  await current?.dispose();
  current = undefined;
});

for (const [label, fresh] of cases) {
  describe.skipIf(label === 'Postgres' && !onPostgres)(`migrations on ${label}`, () => {
    it('apply once, are recorded in _prisma_migrations, and are not applied twice', async () => {
      current = await fresh();
      const first = await current.db.migrate();
      expect(first).toEqual(MIGRATION_NAMES);
      expect(await current.db.migrate()).toEqual([]);
      const rows = await current.db.sql.query<{ migration_name: string; applied_steps_count: number; finished_at: Date | null }>('SELECT migration_name, applied_steps_count, finished_at FROM "_prisma_migrations" ORDER BY migration_name');
      expect(rows.map((r) => r.migration_name)).toEqual(MIGRATION_NAMES);
      for (const row of rows) {
        expect(row.applied_steps_count).toBe(1);
        expect(row.finished_at).not.toBeNull();
      }
      // The Prisma client works on the migrated tables.
      const federation = await current.db.prisma.federation.create({
        data: { name: 'f', backboneId: 'b', backboneSha256: 'a'.repeat(64), featureKey: 'k', channels: 8, codeDim: 4, k: 3, strategy: 'fedavg', totalRounds: 2, localSteps: 5, minParticipants: 1, maxParticipants: 3, roundDeadlineSeconds: 60 },
      });
      expect(federation.status).toBe('active');
    });

    it('match prisma/schema.prisma: every column, type, nullability and unique key (drift check)', async () => {
      current = await fresh();
      await current.db.migrate();
      const expected = parseSchema(await readFile(SCHEMA_FILE, 'utf8'));
      const actual = await current.db.sql.query<{ table_name: string; column_name: string; data_type: string; is_nullable: string }>(
        `SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns WHERE table_schema = current_schema() AND table_name <> '_prisma_migrations'`,
      );
      const key = (c: SchemaColumn) => `${c.table}.${c.column} ${c.type}${c.nullable ? ' null' : ''}`;
      const fromDatabase = actual.map((r) => key({ table: r.table_name, column: r.column_name, type: r.data_type, nullable: r.is_nullable === 'YES' })).sort();
      expect(fromDatabase).toEqual(expected.columns.map(key).sort());
      const indexes = await current.db.sql.query<{ indexdef: string }>(`SELECT indexdef FROM pg_indexes WHERE schemaname = current_schema() AND indexdef LIKE 'CREATE UNIQUE INDEX%' AND indexname NOT LIKE '%_pkey'`);
      const uniqueKeys = indexes.map((i) => {
        const m = /ON \S*?"?(\w+)"? USING btree \((.+)\)/.exec(i.indexdef)!;
        return `${m[1]}(${m[2].replace(/"/g, '').split(',').map((s) => s.trim()).join(',')})`;
      });
      expect(uniqueKeys.sort()).toEqual(expected.uniques.sort());
    });
  });
}

describe('migration runner safety', () => {
  let folder: string | undefined;
  afterEach(async () => {
    if (folder) await rm(folder, { recursive: true, force: true });
    folder = undefined;
  });

  it('refuses a migration edited after it was applied, and one the server does not know', async () => {
    folder = await mkdtemp(join(tmpdir(), 'fuss-migrations-'));
    await cp(MIGRATIONS_FOLDER, folder, { recursive: true });
    const db = await openDatabase({ pgliteDir: 'memory://', migrationsFolder: folder });
    current = { db, dispose: () => db.close() };
    await db.migrate();
    const file = join(folder, '20261127220000_init', 'migration.sql');
    await writeFile(file, `${await readFile(file, 'utf8')}\n-- edited\n`);
    await expect(db.migrate()).rejects.toThrow(/was edited after it was applied/);
    await rm(join(folder, '20261127220000_init'), { recursive: true });
    await expect(db.migrate()).rejects.toThrow(/does not know: 20261127220000_init/);
  });

  it('number the participants of an existing database in enrolment order (backfill)', async () => {
    folder = await mkdtemp(join(tmpdir(), 'fuss-migrations-'));
    await cp(join(MIGRATIONS_FOLDER, '20261127220000_init'), join(folder, '20261127220000_init'), { recursive: true });
    const db = await openDatabase({ pgliteDir: 'memory://', migrationsFolder: folder });
    current = { db, dispose: () => db.close() };
    await db.migrate();
    await db.sql.query(`INSERT INTO "Federation" ("id","name","backboneId","backboneSha256","featureKey","channels","codeDim","k","strategy","totalRounds","localSteps","minParticipants","maxParticipants","roundDeadlineSeconds") VALUES ('f1','f','b','${'a'.repeat(64)}','k',8,4,3,'fedavg',2,5,1,3,60)`);
    for (const [id, at] of [['p-late', '2026-01-02'], ['p-early', '2026-01-01'], ['p-middle', '2026-01-01T12:00:00']]) {
      await db.sql.query(`INSERT INTO "Participant" ("id","federationId","name","tokenHash","createdAt") VALUES ('${id}','f1','${id}','hash-${id}','${at}')`);
    }
    await cp(join(MIGRATIONS_FOLDER, MIGRATION_NAMES[1]), join(folder, MIGRATION_NAMES[1]), { recursive: true });
    expect(await db.migrate()).toEqual([MIGRATION_NAMES[1]]);
    const rows = await db.sql.query<{ id: string; enrolmentIndex: number }>('SELECT "id", "enrolmentIndex" FROM "Participant" ORDER BY "enrolmentIndex"');
    expect(rows).toEqual([{ id: 'p-early', enrolmentIndex: 0 }, { id: 'p-middle', enrolmentIndex: 1 }, { id: 'p-late', enrolmentIndex: 2 }]);
  });

  it('rolls back a failing migration completely', async () => {
    folder = await mkdtemp(join(tmpdir(), 'fuss-migrations-'));
    await mkdir(join(folder, '20260101000000_broken'));
    await writeFile(join(folder, '20260101000000_broken', 'migration.sql'), 'CREATE TABLE "A" ("id" TEXT);\nCREATE TABLE "A" ("id" TEXT);');
    const db = await openDatabase({ pgliteDir: 'memory://', migrationsFolder: folder });
    current = { db, dispose: () => db.close() };
    await expect(db.migrate()).rejects.toThrow(/already exists/);
    const tables = await db.sql.query<{ table_name: string }>(`SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()`);
    expect(tables.map((t) => t.table_name)).not.toContain('A');
  });
});
