// Response schema of a federation's server-side validation scores (fuss server --eval-data DIR).

import { Type, type Static } from '@sinclair/typebox';

export const EvaluationList = Type.Object(
  {
    enabled: Type.Boolean({ description: 'false when the server runs without --eval-data' }),
    dataset: Type.Optional(Type.Object({
      name: Type.String(),
      images: Type.Integer(),
      appliesToFederation: Type.Boolean({ description: "false when the federation's backbone is not the server's (its versions are not evaluated)" }),
    })),
    evaluations: Type.Array(
      Type.Object({
        version: Type.Integer(),
        round: Type.Integer(),
        evaluatedAt: Type.String({ format: 'date-time' }),
        mIoU: Type.Optional(Type.Number({ description: 'Percent, clusters matched to classes by the Hungarian algorithm' })),
        pixelAccuracy: Type.Optional(Type.Number({ description: 'Percent' })),
        perClassIoU: Type.Optional(Type.Record(Type.String(), Type.Union([Type.Number(), Type.Null()]))),
        images: Type.Optional(Type.Integer()),
        seconds: Type.Optional(Type.Number()),
        error: Type.Optional(Type.String({ description: 'Why this version could not be evaluated' })),
      }),
      { description: 'Scored versions, ascending (the newest 2000 versions at most)' },
    ),
    pending: Type.Integer({ description: 'Versions not scored yet' }),
  },
  { $id: 'EvaluationList' },
);
export type EvaluationList = Static<typeof EvaluationList>;
