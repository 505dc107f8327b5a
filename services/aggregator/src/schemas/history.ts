// Response schemas of a federation's history as the dashboard charts it: the centroids of its
// global versions, and what participants reported with their updates (TypeBox).

import { Type, type Static } from '@sinclair/typebox';

export const CentroidHistory = Type.Object(
  {
    k: Type.Integer(),
    codeDim: Type.Integer(),
    latestVersion: Type.Integer(),
    versions: Type.Array(
      Type.Object({
        version: Type.Integer(),
        round: Type.Integer({ description: 'Round that produced the version (0: the initial model)' }),
        createdAt: Type.String({ format: 'date-time' }),
        centroids: Type.Array(Type.Array(Type.Number()), { description: 'Centroids [K][D], 6 significant digits' }),
      }),
      { description: 'Versions in ascending order: all of them, or evenly spaced ones including the first and the latest when they would exceed the size bound' },
    ),
    omittedVersions: Type.Integer({ description: 'Versions left out to bound the response' }),
    classes: Type.Array(Type.Object({ id: Type.Integer(), name: Type.String(), colour: Type.String() }), { description: 'Name and colour of every class id (defaults for unnamed ones)' }),
  },
  { $id: 'CentroidHistory' },
);
export type CentroidHistory = Static<typeof CentroidHistory>;

export const UpdateReport = Type.Object(
  {
    round: Type.Integer(),
    participant: Type.String({ description: 'Participant name' }),
    enrolmentIndex: Type.Integer(),
    samples: Type.Integer(),
    receivedAt: Type.String({ format: 'date-time' }),
    metrics: Type.Record(Type.String(), Type.Number(), { description: 'The numeric entries of the metrics the participant sent (at most 16, names of at most 64 characters)' }),
  },
  { $id: 'UpdateReport' },
);

export const UpdateReports = Type.Object(
  {
    updates: Type.Array(Type.Ref('UpdateReport'), { description: 'By round, then enrolment; the newest rounds when there are more than the limit' }),
    truncated: Type.Boolean({ description: 'true when older updates were left out' }),
  },
  { $id: 'UpdateReports' },
);
export type UpdateReports = Static<typeof UpdateReports>;

export const UpdateReportsQuery = Type.Object({
  sinceRound: Type.Optional(Type.Integer({ minimum: 1, maximum: 2 ** 31 - 1, description: 'Only updates to this round and later' })),
});
