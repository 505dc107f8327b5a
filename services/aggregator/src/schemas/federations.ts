// Request and response schemas of federations, participants and models (TypeBox): one definition
// validates, types the handlers and documents the API.

import { Type, type Static } from '@sinclair/typebox';
import { AUGMENTATION_PATTERN, FEDERATION_DEFAULTS, LR_SCHEDULES, LOCAL_OPTIMIZERS, ROBUST_RULE_PATTERN, SELECTION_PATTERN, SERVER_OPTIMIZER_PATTERN, STRATEGY_NAMES } from '@fuss/core';

export const FederationCreate = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 200, examples: ['road-scenes'] }),
    backbone: Type.Object({
      id: Type.String({ minLength: 1, maxLength: 200, examples: ['mobilenetv2-int8'] }),
      sha256: Type.String({ pattern: '^[0-9a-f]{64}$', description: 'sha256 of the ONNX file' }),
      featureKey: Type.String({ minLength: 1, maxLength: 64, description: 'featureConfigKey of the backbone descriptor (outputs, sizing, normalisation)' }),
      channels: Type.Integer({ minimum: 1, maximum: 16384, description: 'Feature channels C' }),
    }),
    codeDim: Type.Integer({ minimum: 1, maximum: 4096, default: 70, description: 'Code dimension D of the head' }),
    k: Type.Integer({ minimum: 1, maximum: 1000, description: 'Number of centroids (classes)' }),
    strategy: Type.Union(STRATEGY_NAMES.map((name) => Type.Literal(name)), {
      default: FEDERATION_DEFAULTS.strategy,
      description: 'Aggregation strategy; the default is the best measured on the unseen-domain protocol (bench/RESULTS.md); the FUSS paper used fedcc-kmeans',
    }),
    robust: Type.String({
      pattern: ROBUST_RULE_PATTERN,
      default: FEDERATION_DEFAULTS.robust,
      description: 'Robust aggregation: clip[:c] (default: deltas clipped to c = 2 times the median norm), trimmed-mean[:beta], median, krum[:f], multi-krum[:f[:m]], or none (the paper)',
    }),
    maxSamples: Type.Integer({ minimum: 1, maximum: 1_000_000_000, default: 1_000_000, description: 'Largest sample count a participant may report' }),
    modules: Type.Object(
      {
        weighted: Type.Boolean({ default: FEDERATION_DEFAULTS.modules.weighted, description: 'W: weight by sample count' }),
        head: Type.Boolean({ default: FEDERATION_DEFAULTS.modules.head, description: 'E: aggregate the head' }),
        centroids: Type.Boolean({ default: FEDERATION_DEFAULTS.modules.centroids, description: 'C: aggregate the centroids' }),
      },
      { default: {} },
    ),
    regularizer: Type.Union([Type.Literal('none'), Type.Literal('fedprox'), Type.Literal('moon')], { default: FEDERATION_DEFAULTS.regularizer }),
    regularizerScope: Type.Union([Type.Literal('nonlinear'), Type.Literal('head')], { default: 'nonlinear' }),
    serverOptimizer: Type.Optional(
      Type.String({
        pattern: SERVER_OPTIMIZER_PATTERN,
        description: `Server optimiser on the head delta (needs modules.head): none (FedAvg), fedavgm[:lr[:momentum]] or fedadam[:lr[:tau[:beta1[:beta2]]]] (Reddi et al. 2021). Default: ${FEDERATION_DEFAULTS.serverOptimizer} when modules.head, else none`,
      }),
    ),
    localOptimizer: Type.Union(LOCAL_OPTIMIZERS.map((name) => Type.Literal(name)), { default: FEDERATION_DEFAULTS.localOptimizer, description: "Participants' Adam optimisers: reset every round (the paper) or keep their state across rounds" }),
    lrSchedule: Type.Union(LR_SCHEDULES.map((name) => Type.Literal(name)), { default: FEDERATION_DEFAULTS.lrSchedule, description: 'Learning rates across the rounds: constant (the paper) or cosine' }),
    augment: Type.String({ pattern: AUGMENTATION_PATTERN, default: FEDERATION_DEFAULTS.augment, description: 'Views participants train on: none, flip, crops:F or flip,crops:F' }),
    selection: Type.String({
      pattern: SELECTION_PATTERN,
      default: FEDERATION_DEFAULTS.selection,
      description: 'Label-free model selection: none, or loss[:holdout[:patience]] (participants score each global model on held-out images; the federation stops after patience versions without a better score)',
    }),
    rounds: Type.Integer({ minimum: 1, maximum: 100000 }),
    localSteps: Type.Integer({ minimum: 1, maximum: 1000000 }),
    minParticipants: Type.Integer({ minimum: 1, maximum: 10000, default: 1 }),
    maxParticipants: Type.Integer({ minimum: 1, maximum: 10000 }),
    roundDeadlineSeconds: Type.Integer({ minimum: 1, maximum: 30 * 24 * 3600, default: 3600 }),
    deadlinePolicy: Type.Union([Type.Literal('extend'), Type.Literal('fail')], { default: 'extend' }),
    seed: Type.Integer({ minimum: 0, maximum: 2 ** 31 - 1, default: 0 }),
  },
  { $id: 'FederationCreate', additionalProperties: false },
);
export type FederationCreate = Static<typeof FederationCreate>;

export const Federation = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    name: Type.String(),
    backbone: Type.Object({ id: Type.String(), sha256: Type.String(), featureKey: Type.String(), channels: Type.Integer() }),
    codeDim: Type.Integer(),
    k: Type.Integer(),
    strategy: Type.String(),
    robust: Type.String(),
    maxSamples: Type.Integer(),
    modules: Type.Object({ weighted: Type.Boolean(), head: Type.Boolean(), centroids: Type.Boolean() }),
    regularizer: Type.String(),
    regularizerScope: Type.String(),
    serverOptimizer: Type.String(),
    localOptimizer: Type.String(),
    lrSchedule: Type.String(),
    augment: Type.String(),
    selection: Type.String(),
    selectedModelVersion: Type.Union([Type.Integer(), Type.Null()], { description: 'The model version the selection rule chose so far (null without a rule)' }),
    rounds: Type.Integer(),
    localSteps: Type.Integer(),
    minParticipants: Type.Integer(),
    maxParticipants: Type.Integer(),
    roundDeadlineSeconds: Type.Integer(),
    deadlinePolicy: Type.String(),
    seed: Type.Integer(),
    status: Type.String({ description: 'active or finished' }),
    latestModelVersion: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
  },
  { $id: 'Federation' },
);
export type FederationView = Static<typeof Federation>;

export const FederationList = Type.Object({ federations: Type.Array(Type.Ref('Federation')) }, { $id: 'FederationList' });

export const FederationParams = Type.Object({ federationId: Type.String({ format: 'uuid' }) });

export const ParticipantCreate = Type.Object({ name: Type.String({ minLength: 1, maxLength: 200, examples: ['hospital-a'] }) }, { $id: 'ParticipantCreate', additionalProperties: false });

export const ParticipantCreated = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    federationId: Type.String({ format: 'uuid' }),
    name: Type.String(),
    enrolmentIndex: Type.Integer({ description: 'Enrolment order within the federation, 0-based; local seeds derive from it' }),
    token: Type.String({ description: 'Bearer token of the participant. Shown once: only its hash is stored.' }),
  },
  { $id: 'ParticipantCreated' },
);

export const Participant = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    federationId: Type.String({ format: 'uuid' }),
    name: Type.String(),
    enrolmentIndex: Type.Integer({ description: 'Enrolment order within the federation, 0-based; local seeds derive from it' }),
  },
  { $id: 'Participant' },
);

export const ModelParams = Type.Object({
  federationId: Type.String({ format: 'uuid' }),
  version: Type.Union([Type.Literal('latest'), Type.String({ pattern: '^[0-9]{1,9}$' })], { description: 'Model version, or latest' }),
});

export const ParticipantDetails = Type.Object(
  {
    id: Type.String({ format: 'uuid' }),
    federationId: Type.String({ format: 'uuid' }),
    name: Type.String(),
    enrolmentIndex: Type.Integer(),
    createdAt: Type.String({ format: 'date-time' }),
    lastSeenAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'Last authenticated request (to the minute)' }),
    roundsContributed: Type.Integer({ description: 'Updates accepted from this participant' }),
    revoked: Type.Boolean(),
    revokedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  },
  { $id: 'ParticipantDetails' },
);

export const ParticipantList = Type.Object({ participants: Type.Array(Type.Ref('ParticipantDetails')) }, { $id: 'ParticipantList' });

export const ParticipantParams = Type.Object({ federationId: Type.String({ format: 'uuid' }), participantId: Type.String({ format: 'uuid' }) });
