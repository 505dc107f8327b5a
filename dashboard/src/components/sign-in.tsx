// The sign-in form: a token typed in (admin or participant); it stays in this tab only.

import { useState } from 'preact/hooks';
import { isPlausibleToken } from '../session';
import { ErrorLine } from './common';

export function SignIn({ problem, onToken }: { problem?: string; onToken: (token: string) => void }) {
  const [token, setToken] = useState('');
  const [error, setError] = useState<string | undefined>();
  const submit = (event: Event) => {
    event.preventDefault();
    const value = token.trim();
    if (!isPlausibleToken(value)) {
      setError('A token is one word of printable characters.');
      return;
    }
    setError(undefined);
    onToken(value);
  };
  return (
    <main class="sign-in">
      <h1>FUSS dashboard</h1>
      <p>Federated unsupervised semantic segmentation: federations, rounds, participants, the centroid map and masks.</p>
      <form class="card" onSubmit={submit}>
        <label>
          Token
          <input name="token" type="password" autocomplete="off" spellcheck={false} value={token} onInput={(e) => setToken((e.target as HTMLInputElement).value)} placeholder="admin token or fuss_p_…" />
        </label>
        <button type="submit">Sign in</button>
        <ErrorLine error={error ?? problem} />
        <p class="hint">
          The admin token (FUSS_ADMIN_TOKEN) shows every federation; a participant token shows its own federation. A link
          of the form <code>/#token=…</code> signs in too: the part after # never leaves the browser. The token is kept in
          this tab only and sent in the Authorization header, never in a URL.
        </p>
      </form>
    </main>
  );
}
