// Numeric constants shared by every training engine, so they agree to float32 tolerance.

/** Unit vectors are v / max(|v|, UNIT_NORM_EPSILON). */
export const UNIT_NORM_EPSILON = 1e-12;
