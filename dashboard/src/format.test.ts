import { describe, expect, it } from 'vitest';
import { ago, duration } from './format';

describe('format', () => {
  it('writes durations and ages', () => {
    expect([duration(0.4213), duration(12.34), duration(245), duration(7380), duration(null), duration(-1)]).toEqual(['0.42 s', '12.3 s', '4 min 05 s', '2 h 03 min', '—', '—']);
    const now = Date.parse('2025-01-02T00:00:00Z');
    expect([ago(null, now), ago('2025-01-01T23:59:30Z', now), ago('2025-01-01T23:00:00Z', now), ago('2025-01-01T20:00:00Z', now), ago('2024-12-30T00:00:00Z', now)]).toEqual(['never', 'just now', '1 h ago', '4 h ago', '3 days ago']);
  });
});
