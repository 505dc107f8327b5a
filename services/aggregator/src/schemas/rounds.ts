import { Type } from '@sinclair/typebox';

export const JoinAnswer = Type.Object(
  {
    status: Type.Union([Type.Literal('open'), Type.Literal('waiting'), Type.Literal('finished')], { description: 'open: train and upload; waiting: retry after retryAfterSeconds; finished: no more rounds' }),
    round: Type.Optional(Type.Integer()),
    modelVersion: Type.Optional(Type.Integer({ description: 'Global model version to start from' })),
    deadline: Type.Optional(Type.String({ format: 'date-time' })),
    alreadySubmitted: Type.Optional(Type.Boolean()),
    retryAfterSeconds: Type.Optional(Type.Integer()),
    training: Type.Optional(
      Type.Object({
        localSteps: Type.Integer(), k: Type.Integer(), codeDim: Type.Integer(), strategy: Type.String(), regularizer: Type.String(), regularizerScope: Type.String(), seed: Type.Integer(),
        modules: Type.Object({ weighted: Type.Boolean(), head: Type.Boolean(), centroids: Type.Boolean() }, { description: 'Aggregated modules; a participant keeps its own head (centroids) between rounds when head (centroids) is false' }),
        rounds: Type.Integer({ description: "The federation's rounds (a learning-rate schedule spans rounds x localSteps)" }),
        localOptimizer: Type.String({ description: 'reset: fresh Adam optimisers every round; keep: continue the states of the previous round' }),
        lrSchedule: Type.String({ description: 'constant or cosine' }),
        augment: Type.String({ description: 'Views to train on: none, flip, crops:F or flip,crops:F' }),
        selection: Type.String({ description: 'none, or loss:holdout:patience: hold out that share of the images and report the score of the round\'s model on them in the update metrics (validation)' }),
      }),
    ),
  },
  { $id: 'JoinAnswer' },
);

export const SubmitQuery = Type.Object({
  samples: Type.Integer({ minimum: 1, maximum: 1_000_000_000, description: 'Number of training images of the participant' }),
  metrics: Type.Optional(Type.String({ maxLength: 65536, description: 'Local metrics as a JSON object (loss, steps, ...)' })),
});

export const SubmitAnswer = Type.Object(
  {
    accepted: Type.Boolean({ description: 'false when this is a retry of an update accepted before (it counts once)' }),
    duplicate: Type.Boolean(),
    round: Type.Integer(),
    count: Type.Integer({ description: 'Updates the round holds now' }),
  },
  { $id: 'SubmitAnswer' },
);

export const RoundHistory = Type.Object(
  {
    rounds: Type.Array(
      Type.Object({
        number: Type.Integer(),
        state: Type.String({ description: 'open, aggregating, closed or failed' }),
        baseVersion: Type.Integer(),
        updates: Type.Integer(),
        openedAt: Type.String({ format: 'date-time' }),
        deadlineAt: Type.String({ format: 'date-time' }),
        aggregationStartedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
        closedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
        failureReason: Type.Union([Type.String(), Type.Null()]),
        metrics: Type.Union([Type.Object({}, { additionalProperties: true }), Type.Null()]),
      }),
    ),
  },
  { $id: 'RoundHistory' },
);

export const RoundParams = Type.Object({ federationId: Type.String({ format: 'uuid' }), number: Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1 }) });
