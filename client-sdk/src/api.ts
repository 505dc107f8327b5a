// FussApi: one typed method per server operation. JSON operations go through the client generated
// from openapi/openapi.json (with the retrying transport as its fetch); binary bodies and answers
// (models, updates, images) use the transport directly, typed by the generated request types.

import { createClient, type Client } from './generated/client/index.js';
import * as sdk from './generated/sdk.gen.js';
import type {
  ClassLabel,
  Federation,
  FederationCreate,
  FederationList,
  GetModelData,
  HealthResponse,
  JoinAnswer,
  Participant,
  ParticipantCreated,
  ParticipantDetails,
  RoundHistory,
  SegmentImageData,
  SegmentImageResponses,
  SubmitUpdateData,
  SubmitUpdateResponse,
} from './generated/types.gen.js';
import { Transport, type TransportOptions } from './transport.js';

export interface FussApiOptions extends TransportOptions {
  /** Share a transport (its Agent and retry settings) instead of making one; the other options are then ignored. */
  transport?: Transport;
}

/** Per-call options. */
export interface CallOptions {
  signal?: AbortSignal;
}

export interface UploadOptions extends CallOptions {
  /** Samples (images) the update was trained on: its weight in the aggregation. */
  samples: number;
  /** Local training metrics, sent as JSON in the `metrics` query parameter. */
  metrics?: Record<string, unknown>;
}

/** The server's answer to an upload, with the HTTP status and the bytes sent. */
export type UploadResult = SubmitUpdateResponse & {
  /** 201: accepted now; 200: the same bytes had been accepted before (a retry). */
  status: 200 | 201;
  bytes: number;
};

export type SegmentFormat = NonNullable<SegmentImageData['query']['format']>;

export interface SegmentRequest extends CallOptions {
  /** Federation whose global model segments the image. */
  federation: string;
  version?: number | 'latest';
  /** png: 8-bit class ids (default); json: ids as an array; overlay: colours over the image. */
  format?: SegmentFormat;
  image: Uint8Array;
  /** `image/png` or `image/jpeg`. */
  contentType: string;
}

export interface SegmentResult {
  bytes: Uint8Array;
  contentType: string;
  /** Global model version that segmented the image (header x-model-version). */
  modelVersion?: number;
  /** The parsed answer when format is json. */
  json?: SegmentImageResponses[200];
}

export class FussApi {
  readonly transport: Transport;
  private readonly ownsTransport: boolean;
  private readonly client: Client;

  constructor(options: FussApiOptions) {
    this.ownsTransport = !options.transport;
    this.transport = options.transport ?? new Transport(options);
    this.client = createClient({ baseUrl: this.transport.baseUrl });
  }

  /** The participant this token belongs to (GET /v1/participants/me). */
  async me(options?: CallOptions): Promise<Participant> {
    return (await sdk.getParticipantSelf({ ...this.generated('getParticipantSelf', options) })).data;
  }

  async getFederation(federationId: string, options?: CallOptions): Promise<Federation> {
    return (await sdk.getFederation({ ...this.generated('getFederation', options), path: { federationId } })).data;
  }

  /** Every federation (admin): `{ federations }`. */
  async listFederations(options?: CallOptions): Promise<FederationList> {
    return (await sdk.listFederations({ ...this.generated('listFederations', options) })).data;
  }

  /** Create a federation (admin). Not retried once it may have reached the server (it is not idempotent). */
  async createFederation(body: FederationCreate, options?: CallOptions): Promise<Federation> {
    return (await sdk.createFederation({ ...this.generated('createFederation', options, false), body })).data;
  }

  /** Enrol a participant (admin); the answer carries its token, shown once. Not retried once it may have reached the server. */
  async addParticipant(federationId: string, name: string, options?: CallOptions): Promise<ParticipantCreated> {
    return (await sdk.addParticipant({ ...this.generated('addParticipant', options, false), path: { federationId }, body: { name } })).data;
  }

  /** The participants of a federation with their activity (admin). */
  async listParticipants(federationId: string, options?: CallOptions): Promise<ParticipantDetails[]> {
    return (await sdk.listParticipants({ ...this.generated('listParticipants', options, true), path: { federationId } })).data.participants;
  }

  /** Revoke a participant (admin): its token is refused from now on. Idempotent, so safe to retry. */
  async revokeParticipant(federationId: string, participantId: string, options?: CallOptions): Promise<ParticipantDetails> {
    return (await sdk.revokeParticipant({ ...this.generated('revokeParticipant', options, true), path: { federationId, participantId } })).data;
  }

  /** A new token for a participant (admin), shown once; the old one is refused. Not retried once it may have reached the server. */
  async rotateParticipantToken(federationId: string, participantId: string, options?: CallOptions): Promise<ParticipantCreated> {
    return (await sdk.rotateParticipantToken({ ...this.generated('rotateParticipantToken', options, false), path: { federationId, participantId } })).data;
  }

  /** Join the current round (POST …/rounds/current/join): open with its settings, waiting, or finished. */
  async join(federationId: string, options?: CallOptions): Promise<JoinAnswer> {
    // Joining only reads the round's state: safe to repeat.
    return (await sdk.joinRound({ ...this.generated('joinRound', options, true), path: { federationId } })).data;
  }

  /** A global model version (safetensors bytes). */
  async downloadModel(federationId: string, version: number | 'latest', options?: CallOptions): Promise<Uint8Array> {
    const path = fillPath<GetModelData>('/v1/federations/{federationId}/models/{version}', { federationId, version: String(version) });
    const response = await this.transport.request({ operation: 'getModel', method: 'GET', path, headers: { accept: 'application/octet-stream' }, signal: options?.signal });
    return response.body;
  }

  /**
   * Upload this participant's update to round `round` (safetensors bytes). Retries are safe: the
   * server counts the same bytes once and answers 200 (duplicate) instead of 201.
   */
  async uploadUpdate(federationId: string, round: number, bytes: Uint8Array, options: UploadOptions): Promise<UploadResult> {
    const path = fillPath<SubmitUpdateData>('/v1/federations/{federationId}/rounds/{number}/update', { federationId, number: round });
    const query: SubmitUpdateData['query'] = { samples: options.samples, metrics: options.metrics === undefined ? undefined : JSON.stringify(options.metrics) };
    const { data, status } = await this.transport.json<SubmitUpdateResponse>({
      operation: 'submitUpdate',
      method: 'PUT',
      path,
      query,
      headers: { 'content-type': 'application/octet-stream' },
      body: bytes,
      idempotent: true,
      signal: options.signal,
    });
    return { ...data, status: status === 201 ? 201 : 200, bytes: bytes.byteLength };
  }

  /** The names and colours of a federation's classes, by id (GET …/classes; admin or members). */
  async getClasses(federationId: string, options?: CallOptions): Promise<ClassLabel[]> {
    return (await sdk.getClasses({ ...this.generated('getClasses', options), path: { federationId } })).data.classes;
  }

  /**
   * Replace the names and colours of a federation's classes (PUT …/classes; admin). Safe to retry:
   * the same set replaces itself.
   */
  async setClasses(federationId: string, classes: ClassLabel[], options?: CallOptions): Promise<ClassLabel[]> {
    return (await sdk.setClasses({ ...this.generated('setClasses', options, true), path: { federationId }, body: { classes } })).data.classes;
  }

  /** Rounds with their timings and metrics: `{ rounds }`. */
  async roundHistory(federationId: string, options?: CallOptions): Promise<RoundHistory> {
    return (await sdk.listRounds({ ...this.generated('listRounds', options), path: { federationId } })).data;
  }

  /** Segment an image with a federation's global model (POST /segment). */
  async segment(request: SegmentRequest): Promise<SegmentResult> {
    const query: SegmentImageData['query'] = { federation: request.federation, version: request.version === undefined ? undefined : String(request.version), format: request.format };
    const response = await this.transport.request({
      operation: 'segmentImage',
      method: 'POST',
      path: '/segment' satisfies SegmentImageData['url'],
      query,
      headers: { 'content-type': request.contentType },
      body: request.image,
      // Segmenting changes nothing on the server: safe to repeat.
      idempotent: true,
      signal: request.signal,
    });
    const contentType = response.headers.get('content-type') ?? '';
    const version = response.headers.get('x-model-version');
    const result: SegmentResult = { bytes: response.body, contentType, modelVersion: version === null ? undefined : Number(version) };
    if (/json/i.test(contentType)) result.json = JSON.parse(new TextDecoder().decode(response.body)) as SegmentImageResponses[200];
    return result;
  }

  /** Liveness of the server (GET /healthz). */
  async health(options?: CallOptions): Promise<HealthResponse> {
    return (await sdk.health({ ...this.generated('health', options) })).data;
  }

  /** Closes the transport's pooled connections (unless the transport was passed in). */
  async close(): Promise<void> {
    if (this.ownsTransport) await this.transport.close();
  }

  /** Options of a generated SDK call: this client, the retrying fetch named after the operation, throw on error. */
  private generated(operation: string, options: CallOptions | undefined, idempotent?: boolean) {
    return { client: this.client, fetch: this.transport.fetchFor(operation, { idempotent }), signal: options?.signal, throwOnError: true as const };
  }
}

/** Fills a generated operation's URL template with its path parameters, encoded. */
export function fillPath<T extends { url: string; path?: unknown }>(template: T['url'], path: NonNullable<T['path']>): string {
  const values = path as Record<string, string | number>;
  return template.replace(/\{([^}]+)\}/g, (_match, name: string) => {
    if (values[name] === undefined) throw new TypeError(`missing path parameter ${name} for ${template}`);
    return encodeURIComponent(String(values[name]));
  });
}
