// Small pieces shared by the pages.

import type { ComponentChildren } from 'preact';

export function StateBadge({ state }: { state: string }) {
  return <span class={`badge state-${/^[a-z-]+$/.test(state) ? state : 'other'}`}>{state}</span>;
}

export function ErrorLine({ error }: { error?: Error | string }) {
  if (!error) return null;
  return <p class="error" role="alert">{typeof error === 'string' ? error : error.message}</p>;
}

export function Section({ title, id, children, actions }: { title: string; id: string; children: ComponentChildren; actions?: ComponentChildren }) {
  return (
    <section class="card" id={id} data-section={id}>
      <header class="card-head">
        <h2>{title}</h2>
        {actions}
      </header>
      {children}
    </section>
  );
}

/** A secret shown once (a new participant token), with a copy button. */
export function SecretOnce({ label, secret, onClose }: { label: string; secret: string; onClose: () => void }) {
  return (
    <div class="secret" role="status">
      <p>{label} It is shown only now: the server keeps only its hash.</p>
      <code class="token" data-testid="new-token">{secret}</code>
      <div class="row">
        <button type="button" onClick={() => void navigator.clipboard?.writeText(secret)}>Copy</button>
        <button type="button" onClick={onClose}>Done</button>
      </div>
    </div>
  );
}
