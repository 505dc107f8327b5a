import { describe, expect, it } from 'vitest';
import type { Round, UpdateReport } from './api';
import { metricNames, participantSeries, serverSeries, validationSeries } from './series';

const report = (round: number, participant: string, enrolmentIndex: number, metrics: Record<string, number>): UpdateReport => ({ round, participant, enrolmentIndex, samples: 10 * (enrolmentIndex + 1), receivedAt: '2025-01-01T00:00:00Z', metrics });

describe('participantSeries', () => {
  const updates = [report(1, 'b', 1, { loss: 2, steps: 5 }), report(1, 'a', 0, { loss: 3, zeta: 1 }), report(2, 'a', 0, { loss: 1 }), report(3, 'b', 1, { clusterEntropy: 0.5 })];

  it('makes one line per participant in enrolment order, null where a round has no value', () => {
    expect(participantSeries(updates, 'loss')).toEqual({ xs: [1, 2, 3], series: [{ label: 'a', values: [3, 1, null] }, { label: 'b', values: [2, null, null] }] });
    expect(participantSeries(updates, 'samples').series[1]).toEqual({ label: 'b', values: [20, null, 20] });
    expect(participantSeries([], 'loss')).toEqual({ xs: [], series: [] });
  });

  it('offers the SDK metrics first, then the others by name', () => {
    expect(metricNames(updates)).toEqual(['loss', 'clusterEntropy', 'steps', 'zeta']);
  });
});

describe('serverSeries', () => {
  const round = (number: number, metrics: Round['metrics']): Round => ({ number, state: metrics ? 'closed' : 'open', baseVersion: number - 1, updates: 3, openedAt: '', deadlineAt: '', aggregationStartedAt: null, closedAt: null, failureReason: null, metrics });

  it('reads the aggregation measurements of aggregated rounds only, counting clipped and dropped clients', () => {
    const rounds = [round(3, null), round(2, { aggregationSeconds: 0.5, updates: 3, aggregation: { robust: { clipped: ['c1'] } } }), round(1, { aggregationSeconds: 0.25, updates: 2, aggregation: {} })];
    expect(serverSeries(rounds, 'aggregationSeconds')).toEqual({ xs: [1, 2], series: [{ label: 'aggregation seconds', values: [0.25, 0.5] }] });
    expect(serverSeries(rounds, 'clipped').series[0].values).toEqual([null, 1]);
    expect(serverSeries(rounds, 'dropped').series[0].values).toEqual([null, 0]);
  });
});

describe('validationSeries', () => {
  it('charts mIoU and pixel accuracy by version, with a gap where a version could not be evaluated', () => {
    const evaluations = [
      { version: 2, round: 2, evaluatedAt: '', mIoU: 30, pixelAccuracy: 60 },
      { version: 0, round: 0, evaluatedAt: '', mIoU: 10, pixelAccuracy: 40 },
      { version: 1, round: 1, evaluatedAt: '', error: 'unreadable' },
    ];
    expect(validationSeries({ enabled: true, evaluations, pending: 0 })).toEqual({
      xs: [0, 1, 2],
      series: [{ label: 'mIoU', values: [10, null, 30] }, { label: 'pixel accuracy', values: [40, null, 60] }],
    });
  });
});
