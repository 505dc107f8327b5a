// Line charts per round (uPlot): what participants reported with their updates, one line each,
// and the server's own measurements of each aggregation.

import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import type { Round, UpdateReport } from '../api';
import { metricNames, participantSeries, SERVER_METRICS, serverSeries, type ChartData, type ServerMetric } from '../series';

/** Line colours (Okabe-Ito, readable for colour-blind people), repeated beyond eight lines. */
const COLOURS = ['#0072b2', '#e69f00', '#009e73', '#cc79a7', '#56b4e9', '#d55e00', '#f0e442', '#000000'];

export function LineChart({ data, yLabel, testId, xLabel = 'round' }: { data: ChartData; yLabel: string; testId: string; xLabel?: string }) {
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const element = box.current;
    if (!element || data.xs.length === 0) return;
    const options: uPlot.Options = {
      width: Math.max(280, element.clientWidth),
      height: 220,
      scales: { x: { time: false } },
      axes: [{ label: xLabel, incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000] }, { label: yLabel, size: 60 }],
      series: [{ label: xLabel }, ...data.series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % COLOURS.length], width: 2, spanGaps: true, points: { show: true, size: 6 } }))],
    };
    const plot = new uPlot(options, [data.xs, ...data.series.map((s) => s.values)] as uPlot.AlignedData, element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(280, element.clientWidth), height: 220 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [data, yLabel, xLabel]);
  if (data.xs.length === 0) return <p class="empty" data-testid={testId} data-points="0">Nothing to chart yet.</p>;
  return <div class="chart" ref={box} data-testid={testId} data-points={data.xs.length} />;
}

export function ParticipantChart({ updates }: { updates: UpdateReport[] }) {
  const names = useMemo(() => [...metricNames(updates), 'samples'], [updates]);
  const [metric, setMetric] = useState('loss');
  const chosen = names.includes(metric) ? metric : names[0];
  const data = useMemo(() => participantSeries(updates, chosen), [updates, chosen]);
  return (
    <>
      <label class="inline">
        metric{' '}
        <select name="participant-metric" value={chosen} onChange={(e) => setMetric((e.target as HTMLSelectElement).value)}>
          {names.map((n) => <option key={n} value={n}>{n}</option>)}
        </select>
      </label>
      <LineChart data={data} yLabel={chosen} testId="participant-chart" />
    </>
  );
}

export function ServerChart({ rounds }: { rounds: Round[] }) {
  const [metric, setMetric] = useState<ServerMetric>('aggregationSeconds');
  const key = rounds.map((r) => `${r.number}${r.state}`).join();
  const data = useMemo(() => serverSeries(rounds, metric), [key, metric]);
  return (
    <>
      <label class="inline">
        metric{' '}
        <select name="server-metric" value={metric} onChange={(e) => setMetric((e.target as HTMLSelectElement).value as ServerMetric)}>
          {(Object.keys(SERVER_METRICS) as ServerMetric[]).map((m) => <option key={m} value={m}>{SERVER_METRICS[m]}</option>)}
        </select>
      </label>
      <LineChart data={data} yLabel={SERVER_METRICS[metric]} testId="server-chart" />
    </>
  );
}
