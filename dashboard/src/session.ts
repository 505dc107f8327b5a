// The token the dashboard signs in with: taken from the URL fragment (`/#token=...`, never sent to
// the server by the browser) or typed in, kept in this tab's sessionStorage only, and removed from
// the address bar at once so that it does not stay in the history or get copied with a link.

const STORAGE_KEY = 'fuss.dashboard.token';
/** Tokens are single words; the server reads at most 512 characters of a bearer token. */
const TOKEN_PATTERN = /^[\x21-\x7e]{1,512}$/;

export function isPlausibleToken(token: string): boolean {
  return TOKEN_PATTERN.test(token);
}

/**
 * Splits a location hash into the token it carries (`#token=T`, `#/path&token=T` or `#/path?token=T`)
 * and the route that remains (`#/...`, `#/` when none).
 */
export function splitFragment(hash: string): { token?: string; route: string } {
  const body = hash.startsWith('#') ? hash.slice(1) : hash;
  const match = /(?:^|[&?])token=([^&]*)/.exec(body);
  if (!match) return { route: body.startsWith('/') ? `#${body}` : '#/' };
  let token: string | undefined;
  try {
    token = decodeURIComponent(match[1]);
  } catch {
    token = undefined;
  }
  const rest = (body.slice(0, match.index) + body.slice(match.index + match[0].length)).replace(/[&?]$/, '');
  return { token: token && isPlausibleToken(token) ? token : undefined, route: rest.startsWith('/') ? `#${rest}` : '#/' };
}

export interface TokenStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function loadToken(store: TokenStore): string | undefined {
  const token = store.getItem(STORAGE_KEY) ?? undefined;
  return token && isPlausibleToken(token) ? token : undefined;
}

export function saveToken(store: TokenStore, token: string | undefined): void {
  if (token === undefined) store.removeItem(STORAGE_KEY);
  else store.setItem(STORAGE_KEY, token);
}

/** Names the server treats as loopback (its isLoopback in config.ts): 127.x, localhost, *.localhost, ::1. */
export function isLoopbackName(hostname: string): boolean {
  const name = hostname.toLowerCase();
  return name === 'localhost' || name.endsWith('.localhost') || name === '[::1]' || name === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
