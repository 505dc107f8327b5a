// Chart data from the API's answers: per round, what each participant reported with its update,
// and what the server measured while aggregating.

import type { EvaluationList, Round, UpdateReport } from './api';

export interface ChartData {
  /** Round numbers (the x axis). */
  xs: number[];
  /** One line each; null where a round has no value. */
  series: { label: string; values: (number | null)[] }[];
}

/** Metrics the SDK reports, in the order the dashboard offers them; others follow by name. */
const PREFERRED = ['loss', 'clusterEntropy', 'steps', 'trainSeconds', 'firstLoss'];

export function metricNames(updates: readonly UpdateReport[]): string[] {
  const names = new Set<string>();
  for (const u of updates) for (const name of Object.keys(u.metrics)) names.add(name);
  const rank = (name: string) => (PREFERRED.includes(name) ? PREFERRED.indexOf(name) : PREFERRED.length);
  return [...names].sort((a, b) => rank(a) - rank(b) || a.localeCompare(b));
}

/** One line per participant (in enrolment order) of `metric` by round; `samples` is also offered. */
export function participantSeries(updates: readonly UpdateReport[], metric: string): ChartData {
  const xs = [...new Set(updates.map((u) => u.round))].sort((a, b) => a - b);
  const column = new Map(xs.map((x, i) => [x, i]));
  const byParticipant = new Map<string, { index: number; values: (number | null)[] }>();
  for (const u of updates) {
    let line = byParticipant.get(u.participant);
    if (!line) byParticipant.set(u.participant, (line = { index: u.enrolmentIndex, values: xs.map(() => null) }));
    const value = metric === 'samples' ? u.samples : u.metrics[metric];
    if (typeof value === 'number' && Number.isFinite(value)) line.values[column.get(u.round)!] = value;
  }
  const series = [...byParticipant.entries()].sort((a, b) => a[1].index - b[1].index).map(([label, line]) => ({ label, values: line.values }));
  return { xs, series };
}

export const SERVER_METRICS = {
  aggregationSeconds: 'aggregation seconds',
  updates: 'updates aggregated',
  samples: 'samples aggregated',
  clipped: 'updates clipped (robust rule)',
  dropped: 'updates dropped (robust rule)',
} as const;
export type ServerMetric = keyof typeof SERVER_METRICS;

function serverValue(round: Round, metric: ServerMetric): number | null {
  const m = round.metrics;
  if (!m) return null;
  if (metric === 'clipped' || metric === 'dropped') {
    const robust = m.aggregation?.robust;
    if (!robust) return null;
    const list = robust[metric];
    return Array.isArray(list) ? list.length : 0;
  }
  const value = m[metric];
  return typeof value === 'number' && Number.isFinite(value) ? value : null;
}

/** The server's measurement `metric` for every aggregated round. */
export function serverSeries(rounds: readonly Round[], metric: ServerMetric): ChartData {
  const aggregated = rounds.filter((r) => r.metrics !== null).sort((a, b) => a.number - b.number);
  return { xs: aggregated.map((r) => r.number), series: [{ label: SERVER_METRICS[metric], values: aggregated.map((r) => serverValue(r, metric)) }] };
}

/** mIoU and pixel accuracy (percent) of every scored version (x: the version); versions that failed are gaps. */
export function validationSeries(list: EvaluationList): ChartData {
  const scored = [...list.evaluations].sort((a, b) => a.version - b.version);
  const value = (v: number | undefined) => (typeof v === 'number' && Number.isFinite(v) ? v : null);
  return {
    xs: scored.map((e) => e.version),
    series: [
      { label: 'mIoU', values: scored.map((e) => value(e.mIoU)) },
      { label: 'pixel accuracy', values: scored.map((e) => value(e.pixelAccuracy)) },
    ],
  };
}
