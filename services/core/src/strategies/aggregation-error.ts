// The error raised when client updates cannot be aggregated (STYLE 11): it names the client and the
// problem, and carries the HTTP status the server answers with.

import { FussError } from '../errors.js';

/** What is wrong with a set of client updates; also the error's `type` slug. */
export type AggregationProblem =
  /** The round has no update to aggregate. */
  | 'no-updates'
  /** Two updates carry the same client id. */
  | 'duplicate-client'
  /** A client id is not a non-empty string. */
  | 'bad-client-id'
  /** A head tensor or the centroids have the wrong length (or are not Float32Arrays). */
  | 'shape-mismatch'
  /** A head tensor or the centroids hold NaN or an infinity. */
  | 'non-finite'
  /** The sample count is not a positive integer. */
  | 'bad-sample-count'
  /** The sample count is above the federation's maximum. */
  | 'too-many-samples'
  /** The update was trained on another backbone (sha256 differs). */
  | 'backbone-mismatch'
  /** The update was trained on other backbone features (outputs, input size or normalisation differ). */
  | 'feature-mismatch';

/**
 * HTTP status per problem: 400 for a malformed update, 409 for an update that is well formed but does
 * not belong with the others (another backbone, the same client twice), as `IncompatibleModelError`.
 */
const STATUS: Readonly<Record<AggregationProblem, number>> = {
  'no-updates': 400,
  'duplicate-client': 409,
  'bad-client-id': 400,
  'shape-mismatch': 400,
  'non-finite': 400,
  'bad-sample-count': 400,
  'too-many-samples': 400,
  'backbone-mismatch': 409,
  'feature-mismatch': 409,
};

/**
 * A client update (or the set of them) cannot enter aggregation (DESIGN section 3.2). The message
 * starts with the client id when one update is at fault; `problem` (also the `type` slug) says what
 * is wrong, `status` is 400 for malformed updates and 409 for incompatible or duplicated ones.
 */
export class AggregationError extends FussError {
  /** What is wrong. */
  readonly problem: AggregationProblem;
  /** The client whose update is at fault, when a single one is. */
  readonly clientId: string | undefined;

  constructor(problem: AggregationProblem, message: string, clientId?: string) {
    super(clientId === undefined ? message : `update of client "${clientId}": ${message}`, { status: STATUS[problem], type: problem });
    this.problem = problem;
    this.clientId = clientId;
  }
}
