// The participants of a federation (admin): enrolment, last seen, rounds contributed, revoked; enrol
// a new one, revoke one, or rotate its token (a new token is shown once).

import { useState } from 'preact/hooks';
import { seg, type Api, type Federation, type ParticipantCreated, type ParticipantDetails, type Round } from '../api';
import { ago, dateTime } from '../format';
import { usePoll } from './hooks';
import { ErrorLine, SecretOnce, Section } from './common';

export function Participants({ api, federation, rounds }: { api: Api; federation: Federation; rounds: Round[] }) {
  const base = `/v1/federations/${seg(federation.id)}/participants`;
  const updates = rounds.reduce((s, r) => s + r.updates, 0);
  const list = usePoll(() => api.json<{ participants: ParticipantDetails[] }>(base), 10_000, [api, base, updates]);
  const [name, setName] = useState('');
  const [secret, setSecret] = useState<{ label: string; token: string } | undefined>();
  const [problem, setProblem] = useState<string | undefined>();
  const act = async (work: () => Promise<void>) => {
    setProblem(undefined);
    try {
      await work();
      list.reload();
    } catch (err) {
      setProblem((err as Error).message);
    }
  };
  const enrol = (event: Event) => {
    event.preventDefault();
    const trimmed = name.trim();
    if (!trimmed) return setProblem('name the participant');
    void act(async () => {
      const created = await api.send<ParticipantCreated>('POST', base, { name: trimmed });
      setName('');
      setSecret({ label: `Token of ${created.name}:`, token: created.token });
    });
  };
  const revoke = (p: ParticipantDetails) => {
    if (!confirm(`Revoke ${p.name}? Its token stops working at once; its accepted updates stay counted.`)) return;
    void act(async () => void (await api.send('DELETE', `${base}/${seg(p.id)}`)));
  };
  const rotate = (p: ParticipantDetails) => {
    if (!confirm(`Give ${p.name} a new token? The current one stops working at once.`)) return;
    void act(async () => {
      const rotated = await api.send<ParticipantCreated>('POST', `${base}/${seg(p.id)}/token`);
      setSecret({ label: `New token of ${rotated.name}:`, token: rotated.token });
    });
  };
  const now = Date.now();
  return (
    <Section title="Participants" id="participants">
      {secret && <SecretOnce label={secret.label} secret={secret.token} onClose={() => setSecret(undefined)} />}
      <ErrorLine error={problem ?? list.error} />
      {list.data && list.data.participants.length === 0 && <p class="empty">Nobody is enrolled yet.</p>}
      {list.data && list.data.participants.length > 0 && (
        <table class="list" data-testid="participants">
          <thead><tr><th>#</th><th>name</th><th>enrolled</th><th>last seen</th><th>rounds contributed</th><th>state</th><th /></tr></thead>
          <tbody>
            {list.data.participants.map((p) => (
              <tr key={p.id} data-participant={p.name} class={p.revoked ? 'revoked' : ''}>
                <td>{p.enrolmentIndex}</td>
                <td>{p.name}</td>
                <td>{dateTime(p.createdAt)}</td>
                <td title={dateTime(p.lastSeenAt)}>{ago(p.lastSeenAt, now)}</td>
                <td>{p.roundsContributed}</td>
                <td>{p.revoked ? `revoked ${dateTime(p.revokedAt)}` : 'active'}</td>
                <td class="actions">
                  {!p.revoked && <button type="button" onClick={() => rotate(p)}>Rotate token</button>}
                  {!p.revoked && <button type="button" class="danger" onClick={() => revoke(p)}>Revoke</button>}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form class="row" onSubmit={enrol}>
        <input name="participant-name" value={name} maxLength={200} placeholder="new participant's name" onInput={(e) => setName((e.target as HTMLInputElement).value)} />
        <button type="submit">Enrol</button>
      </form>
    </Section>
  );
}
