import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError, ShapeError } from '../errors.js';
import { EXACT, FLOAT64_TOLERANCE, expectClose, expectCloseScalar } from '../test-support/expect-close.js';
import { accumulateConfusion, createConfusion, unsupervisedMetrics } from './segmentation-metrics.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x6d49;

const IGNORE = 255;

/** Pixel arrays reproducing a confusion matrix given as rows of counts (cluster x class). */
function pixelsOf(counts: number[][]): { predictions: Int32Array; labels: Uint8Array } {
  const predictions: number[] = [];
  const labels: number[] = [];
  counts.forEach((row, cluster) =>
    row.forEach((count, cls) => {
      for (let i = 0; i < count; i++) {
        predictions.push(cluster);
        labels.push(cls);
      }
    }),
  );
  return { predictions: Int32Array.from(predictions), labels: Uint8Array.from(labels) };
}

function confusionOf(counts: number[][]): Float64Array {
  const { predictions, labels } = pixelsOf(counts);
  const confusion = createConfusion(counts.length, counts[0].length);
  accumulateConfusion(confusion, counts.length, counts[0].length, predictions, labels, IGNORE);
  return confusion;
}

describe('accumulateConfusion', () => {
  it('counts (cluster, class) pairs and skips the ignore index', () => {
    const confusion = createConfusion(2, 3);
    const predictions = new Uint8Array([0, 0, 1, 1, 1, 0, 1]);
    const labels = new Uint8Array([0, 2, 1, IGNORE, 1, IGNORE, 2]);
    accumulateConfusion(confusion, 2, 3, predictions, labels, IGNORE);
    expectClose(confusion, [1, 0, 1, 0, 2, 1], EXACT);
    accumulateConfusion(confusion, 2, 3, predictions, labels, IGNORE);
    expectClose(confusion, [2, 0, 2, 0, 4, 2], EXACT);
  });

  it('rejects out-of-range labels and predictions, naming the pixel, and leaves the matrix unchanged', () => {
    const confusion = createConfusion(2, 3);
    expect(() => accumulateConfusion(confusion, 2, 3, new Int32Array([0, 1, 0]), new Uint8Array([0, 1, 3]), IGNORE)).toThrow(
      /label 3 at pixel 2/,
    );
    expect(() => accumulateConfusion(confusion, 2, 3, new Int32Array([0, 2]), new Uint8Array([0, 1]), IGNORE)).toThrow(
      /prediction 2 at pixel 1/,
    );
    expect(() => accumulateConfusion(confusion, 2, 3, new Int32Array([-1]), new Uint8Array([0]), IGNORE)).toThrow(DataError);
    expectClose(confusion, new Float64Array(6), EXACT);
  });

  it('rejects mismatched lengths and confusion sizes', () => {
    expect(() => accumulateConfusion(createConfusion(2, 3), 2, 3, new Int32Array(2), new Uint8Array(3), IGNORE)).toThrow(ShapeError);
    expect(() => accumulateConfusion(new Float64Array(5), 2, 3, new Int32Array(1), new Uint8Array(1), IGNORE)).toThrow(ShapeError);
    expect(() => createConfusion(0, 3)).toThrow(ShapeError);
  });
});

describe('unsupervisedMetrics', () => {
  it('scores a hand-worked 2x2 case', () => {
    // Identity matching (15 pixels vs 5). Class 0: TP 10, FP 2, FN 3 -> 10/15. Class 1: TP 5, FP 3, FN 2 -> 5/10.
    const m = unsupervisedMetrics(confusionOf([[10, 2], [3, 5]]), 2, 2, ['road', 'sky']);
    expect(Array.from(m.clusterToClass)).toEqual([0, 1]);
    expectCloseScalar(m.perClassIoU.road ?? NaN, 200 / 3, FLOAT64_TOLERANCE);
    expectCloseScalar(m.perClassIoU.sky ?? NaN, 50, FLOAT64_TOLERANCE);
    expectCloseScalar(m.mIoU, (200 / 3 + 50) / 2, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, 75, FLOAT64_TOLERANCE);
    expect(m.pixels).toBe(20);
  });

  it('scores a hand-worked swapped 2x2 case', () => {
    // Cluster 0 -> class 1, cluster 1 -> class 0 (17 pixels). Class 0: 8 / (8 + 2 + 1); class 1: 9 / (9 + 1 + 2).
    const m = unsupervisedMetrics(confusionOf([[1, 9], [8, 2]]), 2, 2);
    expect(Array.from(m.clusterToClass)).toEqual([1, 0]);
    expectCloseScalar(m.perClassIoU.class_0 ?? NaN, 800 / 11, FLOAT64_TOLERANCE);
    expectCloseScalar(m.perClassIoU.class_1 ?? NaN, 75, FLOAT64_TOLERANCE);
    expectCloseScalar(m.mIoU, (800 / 11 + 75) / 2, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, 85, FLOAT64_TOLERANCE);
  });

  it('scores a hand-worked 3x3 case with a missed class', () => {
    // Identity matching (13 of 17 pixels). Class 0: 5 / (5 + 1 + 2); class 1: 8 / (8 + 2 + 1);
    // class 2: TP 0, FP 1 (cluster 2 holds one class-1 pixel), FN 1 -> 0.
    const m = unsupervisedMetrics(confusionOf([[5, 0, 1], [2, 8, 0], [0, 1, 0]]), 3, 3);
    expect(Array.from(m.clusterToClass)).toEqual([0, 1, 2]);
    expectClose(
      [m.perClassIoU.class_0 ?? NaN, m.perClassIoU.class_1 ?? NaN, m.perClassIoU.class_2 ?? NaN],
      [62.5, 800 / 11, 0],
      FLOAT64_TOLERANCE,
    );
    expectCloseScalar(m.mIoU, (62.5 + 800 / 11) / 3, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, (100 * 13) / 17, FLOAT64_TOLERANCE);
  });

  it('gives null to a class absent from labels and predictions and leaves it out of mIoU', () => {
    // 2 clusters, 3 classes, class 2 never occurs. Class 0: 4 / 5; class 1: 5 / 6.
    const m = unsupervisedMetrics(confusionOf([[4, 1, 0], [0, 5, 0]]), 2, 3);
    expect(Array.from(m.clusterToClass)).toEqual([0, 1]);
    expect(m.perClassIoU.class_2).toBeNull();
    expectCloseScalar(m.mIoU, (80 + 500 / 6) / 2, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, 90, FLOAT64_TOLERANCE);
  });

  it('handles more clusters than classes: the extra cluster is unmatched and its pixels are FN', () => {
    // Class 0: TP 4, FN 2 (in cluster 2) -> 4/6; class 1: TP 3, FN 1 -> 3/4.
    const m = unsupervisedMetrics(confusionOf([[4, 0], [0, 3], [2, 1]]), 3, 2);
    expect(Array.from(m.clusterToClass)).toEqual([0, 1, -1]);
    expectCloseScalar(m.mIoU, (400 / 6 + 75) / 2, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, 70, FLOAT64_TOLERANCE);
  });

  it('handles fewer clusters than classes: an unmatched class that occurs scores 0', () => {
    // Cluster 0 -> class 1 (6 pixels). Class 0: no cluster, FN 2 -> 0; class 1: 6 / (6 + 2 + 0).
    const m = unsupervisedMetrics(confusionOf([[2, 6]]), 1, 2);
    expect(Array.from(m.clusterToClass)).toEqual([1]);
    expect(m.perClassIoU.class_0).toBe(0);
    expectCloseScalar(m.perClassIoU.class_1 ?? NaN, 75, FLOAT64_TOLERANCE);
    expectCloseScalar(m.mIoU, 37.5, FLOAT64_TOLERANCE);
    expectCloseScalar(m.pixelAccuracy, 75, FLOAT64_TOLERANCE);
  });

  it('gives 100 for a perfect prediction under any cluster relabelling', () => {
    const labels = new Uint8Array([0, 1, 2, 2, 1, 0, 3, 3, 3, IGNORE]);
    const relabel = [2, 3, 0, 1];
    const predictions = Int32Array.from(labels, (l) => (l === IGNORE ? 1 : relabel[l]));
    const confusion = createConfusion(4, 4);
    accumulateConfusion(confusion, 4, 4, predictions, labels, IGNORE);
    const m = unsupervisedMetrics(confusion, 4, 4);
    expect(m.mIoU).toBe(100);
    expect(m.pixelAccuracy).toBe(100);
    expect(m.pixels).toBe(9);
    expect(Array.from(m.clusterToClass)).toEqual([2, 3, 0, 1]);
  });

  it('is unaffected by ignored pixels, whatever their predictions', () => {
    const predictions = new Int32Array([0, 1, 1, 0, 1, 0, 0]);
    const labels = new Uint8Array([0, 1, 0, 0, 1, 1, 0]);
    const clean = createConfusion(2, 2);
    accumulateConfusion(clean, 2, 2, predictions, labels, IGNORE);
    const noisy = createConfusion(2, 2);
    accumulateConfusion(
      noisy,
      2,
      2,
      new Int32Array([...predictions, 1, 1, 0, 1]),
      new Uint8Array([...labels, IGNORE, IGNORE, IGNORE, IGNORE]),
      IGNORE,
    );
    expect(unsupervisedMetrics(noisy, 2, 2)).toEqual(unsupervisedMetrics(clean, 2, 2));
  });

  it('returns zeros, not NaN, for an empty confusion matrix', () => {
    const m = unsupervisedMetrics(createConfusion(2, 2), 2, 2);
    expect(m).toMatchObject({ mIoU: 0, pixelAccuracy: 0, pixels: 0, perClassIoU: { class_0: null, class_1: null } });
  });

  it('is unchanged when clusters are relabelled (property)', () => {
    const cases = fc
      .record({ clusters: fc.integer({ min: 1, max: 6 }), classes: fc.integer({ min: 1, max: 6 }) })
      .chain(({ clusters, classes }) =>
        fc.record({
          clusters: fc.constant(clusters),
          classes: fc.constant(classes),
          // Two optimal matchings with equal totals may legitimately differ in per-class IoU, so the
          // counts are unbiased draws from a wide range (fast-check's default bias towards the bounds
          // produced such ties), making ties vanishingly unlikely.
          counts: fc.array(fc.noBias(fc.integer({ min: 1, max: 1_000_000_000 })), {
            minLength: clusters * classes,
            maxLength: clusters * classes,
          }),
          permutation: fc.shuffledSubarray(
            Array.from({ length: clusters }, (_, i) => i),
            { minLength: clusters, maxLength: clusters },
          ),
        }),
      );
    fc.assert(
      fc.property(cases, ({ clusters, classes, counts, permutation }) => {
        const confusion = Float64Array.from(counts);
        // Cluster k of the original becomes cluster permutation[k].
        const relabelled = new Float64Array(confusion.length);
        for (let k = 0; k < clusters; k++) relabelled.set(confusion.subarray(k * classes, (k + 1) * classes), permutation[k] * classes);
        const a = unsupervisedMetrics(confusion, clusters, classes);
        const b = unsupervisedMetrics(relabelled, clusters, classes);
        expectCloseScalar(b.mIoU, a.mIoU, FLOAT64_TOLERANCE, 'mIoU');
        expectCloseScalar(b.pixelAccuracy, a.pixelAccuracy, FLOAT64_TOLERANCE, 'pixel accuracy');
        expect(Object.keys(b.perClassIoU)).toEqual(Object.keys(a.perClassIoU));
        for (const name of Object.keys(a.perClassIoU)) {
          expectCloseScalar(b.perClassIoU[name] ?? NaN, a.perClassIoU[name] ?? NaN, FLOAT64_TOLERANCE, name);
        }
        for (let k = 0; k < clusters; k++) expect(b.clusterToClass[permutation[k]]).toBe(a.clusterToClass[k]);
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('keeps every score within [0, 100] (property)', () => {
    fc.assert(
      fc.property(
        fc
          .record({ clusters: fc.integer({ min: 1, max: 5 }), classes: fc.integer({ min: 1, max: 5 }) })
          .chain(({ clusters, classes }) =>
            fc.tuple(
              fc.constant(clusters),
              fc.constant(classes),
              fc.array(fc.integer({ min: 0, max: 50 }), { minLength: clusters * classes, maxLength: clusters * classes }),
            ),
          ),
        ([clusters, classes, counts]) => {
          const m = unsupervisedMetrics(Float64Array.from(counts), clusters, classes);
          for (const v of [m.mIoU, m.pixelAccuracy, ...Object.values(m.perClassIoU)]) {
            if (v !== null) expect(v >= 0 && v <= 100).toBe(true);
          }
          expect(m.pixels).toBe(counts.reduce((s, c) => s + c, 0));
        },
      ),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('checks class names and sizes', () => {
    expect(() => unsupervisedMetrics(createConfusion(2, 2), 2, 2, ['a'])).toThrow(ShapeError);
    expect(() => unsupervisedMetrics(createConfusion(2, 2), 2, 2, ['a', 'a'])).toThrow(ConfigError);
    expect(() => unsupervisedMetrics(new Float64Array(3), 2, 2)).toThrow(ShapeError);
  });
});
