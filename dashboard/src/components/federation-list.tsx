// The admin's list of federations (name, strategy, state, current round, participants) and the
// creation form, whose fields come from the API's own schema (FederationCreate in /openapi.json).

import { useEffect, useMemo, useState } from 'preact/hooks';
import { seg, type Api, type Federation, type ParticipantDetails, type Round } from '../api';
import { bodyOf, fieldsOf, initialValue, type Field, type JsonSchema } from '../schema-form';
import { usePoll } from './hooks';
import { ErrorLine, Section, StateBadge } from './common';

interface Row {
  federation: Federation;
  current?: Round;
  participants?: ParticipantDetails[];
}

/** Details of the first federations shown (two requests each); the list itself is complete. */
const DETAILED = 100;

async function loadRows(api: Api): Promise<Row[]> {
  const { federations } = await api.json<{ federations: Federation[] }>('/v1/federations');
  const newestFirst = [...federations].reverse();
  return Promise.all(newestFirst.map(async (federation, i) => {
    if (i >= DETAILED) return { federation };
    const [rounds, participants] = await Promise.all([
      api.json<{ rounds: Round[] }>(`/v1/federations/${seg(federation.id)}/rounds`),
      api.json<{ participants: ParticipantDetails[] }>(`/v1/federations/${seg(federation.id)}/participants`),
    ]);
    return { federation, current: rounds.rounds.at(-1), participants: participants.participants };
  }));
}

export function FederationList({ api }: { api: Api }) {
  const rows = usePoll(() => loadRows(api), 5000, [api]);
  const [creating, setCreating] = useState(false);
  return (
    <>
      <Section title="Federations" id="federations" actions={<button type="button" onClick={() => setCreating(!creating)}>{creating ? 'Close the form' : 'New federation'}</button>}>
        {creating && <CreateFederation api={api} onCreated={(f) => { setCreating(false); location.hash = `#/federations/${f.id}`; }} />}
        <ErrorLine error={rows.error} />
        {rows.data && rows.data.length === 0 && <p class="empty">No federation yet. Create one here, with <code>fuss federation create</code>, or with POST /v1/federations.</p>}
        {rows.data && rows.data.length > 0 && (
          <table class="list" data-testid="federation-list">
            <thead><tr><th>name</th><th>strategy</th><th>state</th><th>current round</th><th>participants</th><th>model</th></tr></thead>
            <tbody>
              {rows.data.map(({ federation: f, current, participants }) => (
                <tr key={f.id} data-federation={f.id}>
                  <td><a href={`#/federations/${f.id}`}>{f.name}</a></td>
                  <td>{f.strategy}{f.robust !== 'none' && <span class="muted"> · {f.robust}</span>}</td>
                  <td><StateBadge state={f.status} /></td>
                  <td>{current ? <>{current.number} of {f.rounds} <StateBadge state={current.state} /></> : '—'}</td>
                  <td>{participants ? `${participants.filter((p) => !p.revoked).length} enrolled, ${f.maxParticipants} per round` : '—'}</td>
                  <td>version {f.latestModelVersion}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Section>
    </>
  );
}

function FieldInput({ field, value, error, onChange }: { field: Field; value: string | boolean; error?: string; onChange: (value: string | boolean) => void }) {
  const id = `field-${field.path.replace(/\./g, '-')}`;
  const label = <span>{field.name}{field.required && <span class="required" title="required"> *</span>}</span>;
  let input;
  if (field.kind === 'boolean') {
    input = <input id={id} name={field.path} type="checkbox" checked={value === true} onChange={(e) => onChange((e.target as HTMLInputElement).checked)} />;
  } else if (field.kind === 'choice') {
    input = <select id={id} name={field.path} value={String(value)} onChange={(e) => onChange((e.target as HTMLSelectElement).value)}>{field.choices!.map((c) => <option key={c} value={c}>{c}</option>)}</select>;
  } else {
    const numeric = field.kind === 'integer' || field.kind === 'number';
    input = (
      <input id={id} name={field.path} type={numeric ? 'number' : 'text'} value={String(value)} min={field.minimum} max={field.maximum} step={field.kind === 'integer' ? 1 : 'any'}
        maxLength={field.maxLength} placeholder={field.example !== undefined ? String(field.example) : field.default !== undefined ? String(field.default) : ''}
        onInput={(e) => onChange((e.target as HTMLInputElement).value)} aria-invalid={error ? 'true' : undefined} />
    );
  }
  return (
    <label for={id} class={`field field-${field.kind}`} title={field.description}>
      {label}
      {input}
      {error && <span class="field-error">{error}</span>}
    </label>
  );
}

function CreateFederation({ api, onCreated }: { api: Api; onCreated: (f: Federation) => void }) {
  const [schema, setSchema] = useState<JsonSchema | undefined>();
  const [values, setValues] = useState<Record<string, string | boolean>>({});
  const [errors, setErrors] = useState<Record<string, string>>({});
  const [problem, setProblem] = useState<string | undefined>();
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    fetch('openapi.json', { cache: 'no-store' })
      .then((r) => r.json())
      .then((doc: { components: { schemas: Record<string, JsonSchema> } }) => setSchema(doc.components.schemas.FederationCreate))
      .catch((err: Error) => setProblem(`cannot read the API schema: ${err.message}`));
  }, []);
  const fields = useMemo(() => (schema ? fieldsOf(schema) : []), [schema]);
  const groups = useMemo(() => [...new Set(fields.map((f) => f.group))], [fields]);

  const submit = async (event: Event) => {
    event.preventDefault();
    const { body, errors: found } = bodyOf(fields, values);
    setErrors(found);
    if (!body) return;
    setBusy(true);
    setProblem(undefined);
    try {
      onCreated(await api.send<Federation>('POST', '/v1/federations', body));
    } catch (err) {
      setProblem((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  if (!schema) return <ErrorLine error={problem} />;
  return (
    <form class="create" onSubmit={(e) => void submit(e)} noValidate data-testid="create-federation">
      {groups.map((group) => (
        <fieldset key={group}>
          <legend>{group || 'federation'}</legend>
          {fields.filter((f) => f.group === group).map((f) => (
            <FieldInput key={f.path} field={f} value={values[f.path] ?? initialValue(f)} error={errors[f.path]} onChange={(v) => setValues({ ...values, [f.path]: v })} />
          ))}
        </fieldset>
      ))}
      <div class="row">
        <button type="submit" disabled={busy}>Create the federation</button>
        <span class="hint">Fields marked * are required; the others take the server's defaults. <code>fuss federation create --backbone FILE</code> fills the backbone fields from the ONNX file.</span>
      </div>
      <ErrorLine error={problem} />
    </form>
  );
}
