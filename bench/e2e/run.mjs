// End-to-end federation over HTTP (issue 6): 3 participants by CamVid sequence, each a `fuss join`
// process, against `fuss server` on loopback; 10 rounds, evaluated on camvid/val. Reports the final
// mIoU, the wall time and where it went (participants' computation, their HTTP transfers, the
// server's aggregations, the rest: waiting and coordination), next to the in-process simulator with
// the same settings (their models should agree bit for bit).
// Usage: node bench/e2e/run.mjs [--rounds 10] [--local-steps 50] [--strategy fedcc-kmeans] [--database-url URL]

import { parseArgs } from 'node:util';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { printTable, sharedAssets, writeResults } from '../common.mjs';

const { values } = parseArgs({
  options: {
    rounds: { type: 'string', default: '10' },
    'local-steps': { type: 'string', default: '50' },
    strategy: { type: 'string', default: 'fedcc-kmeans' },
    'database-url': { type: 'string' },
  },
});
const assets = sharedAssets();
const bin = fileURLToPath(new URL('../../cli/bin/fuss.js', import.meta.url));
const outRoot = fileURLToPath(new URL('./out', import.meta.url));

function simulate(label, extra) {
  const out = join(outRoot, label);
  const args = [
    bin, 'simulate', '--data', assets.train, '--eval', assets.val, '--backbone', assets.mobilenet, '--clients', '3', '--partition', 'domain',
    '--strategy', values.strategy, '--rounds', values.rounds, '--local-steps', values['local-steps'], '--eval-every', values.rounds,
    '--seed', '0', '--cache', '.fuss/cache', '--out', out, '--json', ...extra,
  ];
  console.error(`${label}: fuss ${args.slice(1).join(' ')}`);
  execFileSync(process.execPath, args, { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, CI: 'true' } });
  return JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8'));
}

const overHttp = simulate('over-http', ['--over-http', ...(values['database-url'] ? ['--database-url', values['database-url']] : [])]);
const inProcess = simulate('in-process', []);

const t = overHttp.timing;
const share = (seconds) => `${seconds.toFixed(1)} s (${((100 * seconds) / t.wallSeconds).toFixed(0)}%)`;
const rest = t.wallSeconds - t.participantComputeSeconds - t.participantHttpSeconds - t.serverAggregationSeconds - t.evaluateSeconds;
const rows = [
  { run: 'over HTTP (server + 3 fuss join processes)', 'final mIoU': overHttp.final.mIoU.toFixed(2), 'wall s': t.wallSeconds.toFixed(0) },
  { run: 'in process (same settings)', 'final mIoU': inProcess.final.mIoU.toFixed(2), 'wall s': inProcess.wallSeconds.toFixed(0) },
];
printTable(rows);
const breakdown = [
  { part: 'participant computation (features + training), mean per participant', time: share(t.participantComputeSeconds) },
  { part: 'participant HTTP (model download + update upload), mean per participant', time: share(t.participantHttpSeconds) },
  { part: 'server aggregation (database reads + strategy), all rounds', time: share(t.serverAggregationSeconds) },
  { part: 'evaluation of the final model (on val)', time: share(t.evaluateSeconds) },
  { part: 'the rest: start-up, waiting for the slowest participant, polling', time: share(rest) },
];
printTable(breakdown);
const bytes = overHttp.participants.flatMap((p) => p.rounds).reduce((sum, r) => ({ down: sum.down + r.bytes.downloaded, up: sum.up + r.bytes.uploaded }), { down: 0, up: 0 });
console.log(`transferred: ${(bytes.down / 1e6).toFixed(1)} MB down, ${(bytes.up / 1e6).toFixed(1)} MB up`);
console.log(`written ${writeResults('e2e', { settings: overHttp.settings, overHttp: { final: overHttp.final, timing: t, rounds: overHttp.rounds, bytes }, inProcess: { final: inProcess.final, wallSeconds: inProcess.wallSeconds }, rows, breakdown })}`);
