// Server-side validation (fuss server --eval-data DIR): mIoU and pixel accuracy of every global
// version on the operator's labelled dataset, charted by version.

import { useMemo } from 'preact/hooks';
import type { EvaluationList } from '../api';
import { validationSeries } from '../series';
import { LineChart } from './charts';
import { Section } from './common';

export function Validation({ list, admin }: { list: EvaluationList; admin: boolean }) {
  const data = useMemo(() => validationSeries(list), [list]);
  if (!list.enabled) {
    return admin ? <p class="hint" data-testid="validation-off">Server-side validation is off: start the server with <code>--eval-data DIR</code> (a labelled dataset) to score every new version.</p> : null;
  }
  const latest = [...list.evaluations].reverse().find((e) => e.mIoU !== undefined);
  const failed = list.evaluations.filter((e) => e.error);
  return (
    <Section title="Validation" id="validation">
      {list.dataset && !list.dataset.appliesToFederation && <p class="empty">This federation's backbone is not the server's: its versions are not evaluated.</p>}
      {list.dataset?.appliesToFederation && (
        <>
          <p class="muted">
            On {list.dataset.name} ({list.dataset.images} labelled images, clusters matched to classes by the Hungarian algorithm).
            {latest && <> Version {latest.version}: mIoU <strong data-testid="latest-miou">{latest.mIoU!.toFixed(2)}</strong>, pixel accuracy {latest.pixelAccuracy!.toFixed(2)}.</>}
            {list.pending > 0 && ` ${list.pending} version${list.pending === 1 ? '' : 's'} waiting.`}
          </p>
          <LineChart data={data} yLabel="percent" xLabel="version" testId="validation-chart" />
          {failed.length > 0 && <p class="error">Not evaluated: {failed.map((e) => `version ${e.version} (${e.error})`).join('; ')}</p>}
        </>
      )}
    </Section>
  );
}
