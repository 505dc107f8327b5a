// The dashboard: sign in (token from the fragment, typed, or none on a local server without an
// admin token), then the federation list (admin) or the participant's own federation.

import { useEffect, useState } from 'preact/hooks';
import { Api, ApiError, type Identity } from '../api';
import { isLoopbackName, loadToken, saveToken, splitFragment } from '../session';
import { SignIn } from './sign-in';
import { FederationList } from './federation-list';
import { FederationPage } from './federation-page';

type Session = { api: Api; identity: Identity };

function currentRoute(): string {
  return location.hash.startsWith('#/') ? location.hash : '#/';
}

export function App() {
  const [session, setSession] = useState<Session | undefined>();
  const [checking, setChecking] = useState(true);
  const [problem, setProblem] = useState<string | undefined>();
  const [route, setRoute] = useState(currentRoute());

  const signIn = async (token: string | undefined, quiet = false) => {
    const api = new Api(token);
    try {
      const identity = await api.identify();
      saveToken(sessionStorage, token);
      setSession({ api, identity });
      setProblem(undefined);
    } catch (err) {
      saveToken(sessionStorage, undefined);
      setSession(undefined);
      if (!quiet || token !== undefined) setProblem(err instanceof ApiError && err.status === 401 ? 'This token is not valid here (revoked, rotated, or for another server).' : (err as Error).message);
    } finally {
      setChecking(false);
    }
  };

  useEffect(() => {
    // A token in the fragment wins over a stored one, and leaves the address bar at once.
    const { token, route: rest } = splitFragment(location.hash);
    if (location.hash.includes('token=')) history.replaceState(null, '', `${location.pathname}${rest}`);
    setRoute(currentRoute());
    const known = token ?? loadToken(sessionStorage);
    // Only a server reached on a loopback name can run without an admin token: elsewhere, without a
    // token, there is nothing to try and the form is shown at once.
    if (known === undefined && !isLoopbackName(location.hostname)) setChecking(false);
    else void signIn(known, true);
    const onHash = () => setRoute(currentRoute());
    addEventListener('hashchange', onHash);
    return () => removeEventListener('hashchange', onHash);
  }, []);

  const signOut = () => {
    saveToken(sessionStorage, undefined);
    setSession(undefined);
    setProblem(undefined);
    location.hash = '#/';
  };

  if (checking) return <p class="loading">Signing in…</p>;
  if (!session) return <SignIn problem={problem} onToken={(token) => void signIn(token)} />;

  const { api, identity } = session;
  const federationMatch = /^#\/federations\/([0-9a-f-]{36})$/.exec(route);
  const federationId = identity.kind === 'participant' ? identity.self.federationId : federationMatch?.[1];
  return (
    <div class="shell">
      <header class="top">
        <a class="brand" href="#/">FUSS</a>
        <span class="who" data-testid="identity">
          {identity.kind === 'admin' ? (identity.local ? 'admin (local server without FUSS_ADMIN_TOKEN)' : 'admin') : `participant ${identity.self.name}`}
        </span>
        <nav>
          <a href="docs" target="_blank" rel="noopener noreferrer">API docs</a>
          {api.token !== undefined && <button type="button" class="link" onClick={signOut}>Sign out</button>}
        </nav>
      </header>
      <main>
        {federationId ? <FederationPage key={federationId} api={api} identity={identity} federationId={federationId} /> : <FederationList api={api} />}
      </main>
    </div>
  );
}
