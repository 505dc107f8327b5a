// Public surface of @fuss/client: the FUSS HTTP API (FussApi), its transport and errors, and the
// request/response types generated from openapi/openapi.json.
export * from './api.js';
export * from './errors.js';
export * from './transport.js';
export type * from './generated/types.gen.js';
export { FussClient, BackboneMismatchError, type FussClientOptions, type JoinRoundResult, type ParticipantEvent, type RoundSummary } from './fuss-client.js';
