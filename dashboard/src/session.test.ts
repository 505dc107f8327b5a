import { describe, expect, it } from 'vitest';
import { isLoopbackName, isPlausibleToken, loadToken, saveToken, splitFragment } from './session';

describe('splitFragment', () => {
  it('takes the token out of the fragment and keeps the route', () => {
    expect(splitFragment('#token=fuss_p_abc-_DEF')).toEqual({ token: 'fuss_p_abc-_DEF', route: '#/' });
    expect(splitFragment('#/federations/f1&token=abc')).toEqual({ token: 'abc', route: '#/federations/f1' });
    expect(splitFragment('#/federations/f1?token=a%2Bb')).toEqual({ token: 'a+b', route: '#/federations/f1' });
  });

  it('leaves a fragment without a token as a route', () => {
    expect(splitFragment('')).toEqual({ route: '#/' });
    expect(splitFragment('#/federations/x')).toEqual({ route: '#/federations/x' });
    expect(splitFragment('#junk')).toEqual({ route: '#/' });
  });

  it('drops tokens that cannot be bearer tokens (spaces, control characters, bad escapes, too long)', () => {
    expect(splitFragment('#token=a%20b').token).toBeUndefined();
    expect(splitFragment('#token=%0aabc').token).toBeUndefined();
    expect(splitFragment('#token=%E0%A4%A').token).toBeUndefined();
    expect(splitFragment(`#token=${'x'.repeat(513)}`).token).toBeUndefined();
    expect(splitFragment('#token=').token).toBeUndefined();
    expect(isPlausibleToken('x'.repeat(512))).toBe(true);
  });
});

describe('the token store', () => {
  it('saves, loads and forgets a token, ignoring implausible stored values', () => {
    const map = new Map<string, string>();
    const store = { getItem: (k: string) => map.get(k) ?? null, setItem: (k: string, v: string) => void map.set(k, v), removeItem: (k: string) => void map.delete(k) };
    expect(loadToken(store)).toBeUndefined();
    saveToken(store, 'tok');
    expect(loadToken(store)).toBe('tok');
    saveToken(store, undefined);
    expect(loadToken(store)).toBeUndefined();
    map.set('fuss.dashboard.token', 'has space');
    expect(loadToken(store)).toBeUndefined();
  });
});

describe('isLoopbackName', () => {
  it('knows the names a server without admin token answers', () => {
    expect(['127.0.0.1', '127.1.2.3', 'localhost', 'LOCALHOST', 'app.localhost', '[::1]'].every(isLoopbackName)).toBe(true);
    expect(['fuss.example.org', '10.0.0.1', '127.0.0.1.example.org', 'localhost.example.org'].some(isLoopbackName)).toBe(false);
  });
});
