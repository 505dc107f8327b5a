// The server's API as the dashboard uses it: same-origin fetch with the bearer token in the
// Authorization header (never in a URL), and problem details (RFC 9457) turned into ApiErrors.

// The API's types, generated from the server's OpenAPI document (npm run openapi): the dashboard
// breaks at type-check time, not in a browser, when the API changes.
import type {
  CentroidHistory, EvaluationList, Federation, Participant, ParticipantCreated, ParticipantDetails, RoundHistory, UpdateReport,
} from '../../client-sdk/src/generated/types.gen';

export class ApiError extends Error {
  constructor(message: string, readonly status: number, readonly type?: string) {
    super(message);
  }
}

// Re-exported under the names the components use.
export type { CentroidHistory, EvaluationList, Federation, ParticipantCreated, ParticipantDetails, UpdateReport };
export type ParticipantSelf = Participant;
export type ClassEntry = CentroidHistory['classes'][number];

/** What the server writes into a round's metrics when it aggregates (a free-form object in the API). */
export interface RoundMetrics {
  updates?: number;
  samples?: number;
  aggregationSeconds?: number;
  participants?: Record<string, string>;
  aggregation?: { robust?: { rule?: string; clipped?: string[]; dropped?: string[] } };
  [key: string]: unknown;
}

export type Round = Omit<RoundHistory['rounds'][number], 'metrics'> & { metrics: RoundMetrics | null };

export type Identity = { kind: 'admin'; local: boolean } | { kind: 'participant'; self: ParticipantSelf };

/** A path segment for a URL: ids come from the server, but are encoded anyway. */
export const seg = (value: string | number) => encodeURIComponent(String(value));

async function problemOf(response: Response): Promise<ApiError> {
  let detail = `${response.status} ${response.statusText}`;
  let type: string | undefined;
  try {
    const body = (await response.json()) as { detail?: unknown; title?: unknown; type?: unknown };
    if (typeof body.detail === 'string') detail = body.detail;
    else if (typeof body.title === 'string') detail = body.title;
    if (typeof body.type === 'string') type = body.type.split('/').pop();
  } catch {
    // Not JSON: keep the status line.
  }
  return new ApiError(detail, response.status, type);
}

export class Api {
  constructor(readonly token: string | undefined) {}

  private headers(extra: Record<string, string> = {}): Record<string, string> {
    return this.token ? { ...extra, authorization: `Bearer ${this.token}` } : extra;
  }

  async request(method: string, path: string, body?: BodyInit, contentType?: string): Promise<Response> {
    const response = await fetch(path, { method, headers: this.headers(contentType ? { 'content-type': contentType } : {}), body, cache: 'no-store', credentials: 'omit' });
    if (!response.ok) throw await problemOf(response);
    return response;
  }

  async json<T>(path: string): Promise<T> {
    return (await (await this.request('GET', path)).json()) as T;
  }

  async send<T>(method: 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const response = await this.request(method, path, body === undefined ? undefined : JSON.stringify(body), body === undefined ? undefined : 'application/json');
    return (await response.json()) as T;
  }

  /**
   * Who the token is: the admin (or a local caller of a server without admin token), or a
   * participant. Participant tokens have the server's `fuss_p_` prefix, so the first guess is
   * right and no refused request is made (the browser would log it as an error).
   */
  async identify(): Promise<Identity> {
    const probes = this.token?.startsWith('fuss_p_') ? [this.asParticipant, this.asAdmin] : [this.asAdmin, this.asParticipant];
    try {
      return await probes[0].call(this);
    } catch (err) {
      if (!(err instanceof ApiError) || err.status !== 403) throw err;
      return probes[1].call(this);
    }
  }

  private async asAdmin(): Promise<Identity> {
    await this.json('/v1/federations');
    return { kind: 'admin', local: this.token === undefined };
  }

  private async asParticipant(): Promise<Identity> {
    return { kind: 'participant', self: await this.json<ParticipantSelf>('/v1/participants/me') };
  }
}
