// A federation's page: configuration, round timeline (polled), charts, centroid map, participants
// (admin), model versions and the image drop. What a token may not read is not asked for.

import { useState } from 'preact/hooks';
import { seg, type Api, type CentroidHistory, type EvaluationList, type Federation, type Identity, type Round, type UpdateReport } from '../api';
import { dateTime, duration } from '../format';
import { usePoll } from './hooks';
import { ErrorLine, Section, StateBadge } from './common';
import { ParticipantChart, ServerChart } from './charts';
import { CentroidMap } from './centroid-map';
import { Participants } from './participants';
import { TryIt } from './try-it';
import { Validation } from './validation';

const POLL_MS = 2000;

interface Live {
  federation: Federation;
  rounds: Round[];
}

/** Changes whenever something charted may have changed (a new update or a new version). */
function progressKey(live: Live | undefined): string {
  if (!live) return '';
  return `${live.federation.latestModelVersion}:${live.rounds.length}:${live.rounds.reduce((s, r) => s + r.updates, 0)}:${live.rounds.at(-1)?.state}`;
}

export function FederationPage({ api, identity, federationId }: { api: Api; identity: Identity; federationId: string }) {
  const base = `/v1/federations/${seg(federationId)}`;
  const live = usePoll(async (): Promise<Live> => {
    const [federation, history] = await Promise.all([api.json<Federation>(base), api.json<{ rounds: Round[] }>(`${base}/rounds`)]);
    return { federation, rounds: history.rounds };
  }, POLL_MS, [api, base]);
  const key = progressKey(live.data);
  const updates = usePoll(() => api.json<{ updates: UpdateReport[]; truncated: boolean }>(`${base}/updates`), 0, [api, base, key]);
  const [classesVersion, setClassesVersion] = useState(0);
  const centroids = usePoll(() => api.json<CentroidHistory>(`${base}/centroids`), 0, [api, base, live.data?.federation.latestModelVersion, classesVersion]);
  const classes = centroids.data?.classes;
  // Scores arrive some time after a version (the server evaluates in the background): polled.
  const [validationOff, setValidationOff] = useState(false);
  const evaluations = usePoll(async () => {
    const list = await api.json<EvaluationList>(`${base}/evaluations`);
    setValidationOff(!list.enabled);
    return list;
  }, validationOff ? 0 : 5000, [api, base]);

  if (!live.data) return live.error ? <ErrorLine error={live.error} /> : <p class="loading">Loading the federation…</p>;
  const { federation: f, rounds } = live.data;
  const admin = identity.kind === 'admin';
  return (
    <div class="federation" data-federation={f.id}>
      <div class="title">
        {admin && <a href="#/" class="back">← federations</a>}
        <h1 data-testid="federation-name">{f.name}</h1>
        <StateBadge state={f.status} />
        <span class="muted">{rounds.length ? `round ${rounds.at(-1)!.number} of ${f.rounds}` : ''} · model version {f.latestModelVersion}</span>
      </div>
      <ErrorLine error={live.error} />
      <div class="grid">
        <Configuration federation={f} />
        <Timeline federation={f} rounds={rounds} />
      </div>
      <div class="grid">
        <Section title={admin ? 'What participants report' : 'What you reported'} id="participant-chart">
          <ErrorLine error={updates.error} />
          {updates.data && <ParticipantChart updates={updates.data.updates} />}
          {updates.data?.truncated && <p class="hint">Only the newest rounds are shown.</p>}
        </Section>
        <Section title="Server measurements" id="server-chart">
          <ServerChart rounds={rounds} />
        </Section>
      </div>
      {evaluations.data && <Validation list={evaluations.data} admin={admin} />}
      <div class="grid">
        <Section title="Centroid map" id="centroid-map">
          <ErrorLine error={centroids.error} />
          {centroids.data && <CentroidMap history={centroids.data} />}
        </Section>
        <TryIt api={api} federation={f} canRename={admin} classes={classes} onRenamed={() => setClassesVersion((v) => v + 1)} />
      </div>
      {admin && <Participants api={api} federation={f} rounds={rounds} />}
      <Models api={api} federation={f} />
    </div>
  );
}

function Configuration({ federation: f }: { federation: Federation }) {
  const modules = [f.modules.weighted && 'W', f.modules.head && 'E', f.modules.centroids && 'C'].filter(Boolean).join('') || 'none';
  const rows: [string, string][] = [
    ['strategy', f.strategy], ['robust rule', f.robust], ['modules', modules], ['regularizer', f.regularizer === 'none' ? 'none' : `${f.regularizer} (${f.regularizerScope})`],
    ['classes K', String(f.k)], ['code dimension D', String(f.codeDim)], ['backbone', `${f.backbone.id} · ${f.backbone.channels} channels`],
    ['backbone sha256', `${f.backbone.sha256.slice(0, 16)}…`], ['rounds', String(f.rounds)], ['local steps', String(f.localSteps)],
    ['participants per round', `${f.minParticipants} to ${f.maxParticipants}`], ['round deadline', `${duration(f.roundDeadlineSeconds)} (then ${f.deadlinePolicy})`],
    ['largest sample count', String(f.maxSamples)], ['seed', String(f.seed)], ['created', dateTime(f.createdAt)], ['id', f.id],
  ];
  return (
    <Section title="Configuration" id="configuration">
      <dl class="config">{rows.map(([k, v]) => <div key={k}><dt>{k}</dt><dd>{v}</dd></div>)}</dl>
    </Section>
  );
}

function robustNote(round: Round): string {
  const robust = round.metrics?.aggregation?.robust;
  if (!robust) return '';
  const names = round.metrics?.participants ?? {};
  const who = (ids: string[] | undefined) => (ids ?? []).map((id) => names[id] ?? id).join(', ');
  return [robust.clipped?.length ? `clipped: ${who(robust.clipped)}` : '', robust.dropped?.length ? `dropped: ${who(robust.dropped)}` : ''].filter(Boolean).join('; ');
}

function Timeline({ federation: f, rounds }: { federation: Federation; rounds: Round[] }) {
  const newestFirst = [...rounds].reverse();
  return (
    <Section title="Rounds" id="timeline">
      <ol class="timeline" data-testid="timeline">
        {newestFirst.map((r) => (
          <li key={r.number} data-round={r.number} data-state={r.state} class={`round state-${r.state}`}>
            <div class="round-head">
              <strong>round {r.number}</strong> <StateBadge state={r.state} />
              <span class="updates" data-testid="round-updates">{r.updates} of {f.maxParticipants} updates{r.state === 'open' && f.minParticipants < f.maxParticipants ? ` (${f.minParticipants} needed by the deadline)` : ''}</span>
            </div>
            <div class="round-times muted">
              opened {dateTime(r.openedAt)}
              {r.state === 'open' && <> · deadline {dateTime(r.deadlineAt)}</>}
              {r.closedAt && <> · {r.state === 'failed' ? 'failed' : 'closed'} {dateTime(r.closedAt)}</>}
              {typeof r.metrics?.aggregationSeconds === 'number' && <> · aggregated in <span data-testid="aggregation-seconds">{duration(r.metrics.aggregationSeconds)}</span></>}
              {r.metrics && <> · from version {r.baseVersion}</>}
            </div>
            {robustNote(r) && <div class="round-note">{robustNote(r)}</div>}
            {r.failureReason && <div class="error">{r.failureReason}</div>}
          </li>
        ))}
      </ol>
    </Section>
  );
}

function Models({ api, federation: f }: { api: Api; federation: Federation }) {
  const [problem, setProblem] = useState<string | undefined>();
  const [all, setAll] = useState(false);
  const versions = Array.from({ length: f.latestModelVersion + 1 }, (_, v) => f.latestModelVersion - v);
  const shown = all ? versions : versions.slice(0, 10);
  // The download needs the Authorization header, so it is fetched and handed to the browser as a blob.
  const download = async (version: number) => {
    try {
      const response = await api.request('GET', `/v1/federations/${seg(f.id)}/models/${version}`);
      const url = URL.createObjectURL(await response.blob());
      const a = document.createElement('a');
      a.href = url;
      a.download = `${f.name.replace(/[^\w.-]+/g, '_')}-v${version}.safetensors`;
      a.click();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  return (
    <Section title="Model versions" id="models">
      <ul class="versions">
        {shown.map((v) => (
          <li key={v}>
            <button type="button" class="link" data-version={v} onClick={() => void download(v)}>version {v}{v === 0 ? ' (initial)' : ''} · safetensors</button>
          </li>
        ))}
      </ul>
      {versions.length > shown.length && <button type="button" class="link" onClick={() => setAll(true)}>all {versions.length} versions</button>}
      <ErrorLine error={problem} />
    </Section>
  );
}
