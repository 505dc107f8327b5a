// Prisma 7 configuration: schema and migrations live in prisma/. The server applies migrations itself
// (services/aggregator/src/db/migrate.ts), so the CLI is only used for `prisma generate`.
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: 'prisma/schema.prisma',
  migrations: { path: 'prisma/migrations' },
});
