import { defineConfig } from 'vitest/config';

export default defineConfig({
  // Workspace packages export their TypeScript sources under the "source" condition, so tests run
  // against src/ without a build (Node tests resolve through the SSR settings).
  resolve: { conditions: ['source'] },
  ssr: { resolve: { conditions: ['source'], externalConditions: ['source'] } },
  test: {
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    projects: [
      {
        extends: true,
        test: {
          name: 'unit',
          include: ['services/*/src/**/*.test.ts', 'dashboard/src/**/*.test.ts', 'client-sdk/src/**/*.test.ts', 'cli/src/**/*.test.ts', 'test/**/*.test.ts'],
          exclude: ['test/hostile/**', '**/node_modules/**'],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // Measures latencies under attack and load: runs after the others, one file at a time, so
        // nothing else competes for the cores.
        extends: true,
        test: { name: 'hostile', include: ['test/hostile/**/*.test.ts'], fileParallelism: false, sequence: { groupOrder: 1 } },
      },
    ],
  },
});
