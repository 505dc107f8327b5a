// Options and helpers of the commands that talk to an aggregation server.

import type { OptionSpec, OptionValues } from '../options.js';
import { UsageError } from '../options.js';

export const SERVER_OPTION: OptionSpec = { name: 'server', type: 'string', arg: 'URL', description: 'Aggregation server, e.g. https://fuss.example.org', env: 'FUSS_SERVER', required: true };
export const ADMIN_TOKEN_OPTION: OptionSpec = { name: 'admin-token', type: 'string', arg: 'TOKEN', description: 'Admin token of the server', env: 'FUSS_ADMIN_TOKEN' };
export const RETRY_OPTIONS: OptionSpec[] = [
  { name: 'retries', type: 'integer', arg: 'N', description: 'Attempts per request on network errors, 5xx and 429', default: 5, min: 1 },
];

/** Creates the HTTP API client of `@fuss/client` for these options. */
export async function openApi(values: OptionValues, token: string | undefined, onRetry?: (line: string) => void) {
  const { FussApi } = await import('@fuss/client');
  return new FussApi({
    baseUrl: serverUrl(values),
    token,
    retry: { maxAttempts: values.retries as number },
    onRetry: onRetry ? (event) => onRetry(retryLine(event)) : undefined,
  });
}

/** Runs `work` with an API client for these options (retries reported on stderr), closing it after. */
export async function withApi<T>(values: OptionValues, token: string | undefined, io: { stderr(text: string): void }, work: (api: Awaited<ReturnType<typeof openApi>>) => Promise<T>): Promise<T> {
  const api = await openApi(values, token, (line) => io.stderr(`${line}\n`));
  try {
    return await work(api);
  } finally {
    await api.close();
  }
}

/** What a command prints when the transport retries a request. */
export function retryLine(event: { attempt: number; delayMs: number; reason: string }): string {
  return `retrying (attempt ${event.attempt + 1}) in ${(event.delayMs / 1000).toFixed(1)}s: ${event.reason}`;
}

export function serverUrl(values: OptionValues): string {
  const text = values.server as string;
  try {
    const url = new URL(text);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    return url.toString().replace(/\/$/, '');
  } catch {
    throw new UsageError(`--server must be an http(s) URL (got "${text}")`);
  }
}
