// Child process of bench/server/run.mjs: aggregates one round of a Postgres database and reports its
// own time and memory, so the peak RSS is the aggregation's and not the benchmark's.
// Usage: node bench/server/aggregate-round.mjs DATABASE_URL ROUND_ID  (prints one JSON line)

import { buildApp, openDatabase } from '@fuss/aggregator';

const [databaseUrl, roundId] = process.argv.slice(2);
const db = await openDatabase({ databaseUrl });
const app = await buildApp({ db, config: { adminToken: 'bench-admin-token-0123456789' }, logger: { level: 'error' } });
await app.ready();
global.gc?.();
const rssBefore = process.memoryUsage().rss;
let peak = rssBefore;
let atPeak = process.memoryUsage();
const sampler = setInterval(() => {
  const usage = process.memoryUsage();
  if (usage.rss > peak) [peak, atPeak] = [usage.rss, usage];
}, 10);
const started = performance.now();
const done = await app.rounds.aggregate(roundId);
const seconds = (performance.now() - started) / 1000;
clearInterval(sampler);
peak = Math.max(peak, process.memoryUsage().rss, process.resourceUsage().maxRSS * 1024);
await app.close();
await db.close();
const mib = (bytes) => Math.round(bytes / 2 ** 20);
// Where the peak was: V8 heap, ArrayBuffers (update bytes, tensors) and the rest (native: Prisma's
// query engine, the pg driver, malloc arenas).
const breakdown = { heapTotalMiB: mib(atPeak.heapTotal), heapUsedMiB: mib(atPeak.heapUsed), arrayBuffersMiB: mib(atPeak.arrayBuffers), externalMiB: mib(atPeak.external) };
console.log(JSON.stringify({ done, seconds, rssBeforeMiB: rssBefore / 2 ** 20, peakRssMiB: peak / 2 ** 20, atPeak: breakdown }));
