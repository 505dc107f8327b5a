import { afterEach, describe, expect, it } from 'vitest';
import * as ort from 'onnxruntime-node';
import { FeatureAssembler, finestOutput } from './feature-graph.js';
import { l2NormalizeCells, resizeBilinearChw } from './feature-ops.js';
import { float16ToFloat32, float32ToFloat16, toHalfBits } from '../io/float16.js';
import { createRng } from '../math/rng.js';
import { expectClose, FLOAT32_TOLERANCE } from '../test-support/expect-close.js';

interface Grid {
  channels: number;
  height: number;
  width: number;
}

function randomMap(grid: Grid, seed: number): ort.Tensor {
  const rng = createRng(seed);
  const data = Float32Array.from({ length: grid.channels * grid.height * grid.width }, () => rng.normal());
  return new ort.Tensor('float32', data, [1, grid.channels, grid.height, grid.width]);
}

/** The JavaScript reference: normalise each output, resize it to the finest grid, concatenate. */
function reference(maps: ort.Tensor[], l2: boolean): Float32Array {
  const grids = maps.map((m) => ({ channels: m.dims[1], height: m.dims[2], width: m.dims[3] }));
  const finest = grids[finestOutput(grids)];
  const parts = maps.map((m, i) => {
    const { channels, height, width } = grids[i];
    const data = new Float32Array(m.data as Float32Array);
    if (l2) l2NormalizeCells(data, channels, height * width);
    return height === finest.height && width === finest.width ? data : resizeBilinearChw(data, channels, height, width, finest.height, finest.width);
  });
  const out = new Float32Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

let assembler: FeatureAssembler | undefined;
afterEach(async () => {
  await assembler?.close();
  assembler = undefined;
});

describe('FeatureAssembler (outputs normalised, resized and concatenated in onnxruntime)', () => {
  const cases: { name: string; grids: Grid[] }[] = [
    { name: 'a stride-8 and a stride-16 output (MobileNetV2 at 360 x 480, fewer channels)', grids: [{ channels: 6, height: 45, width: 60 }, { channels: 9, height: 23, width: 30 }] },
    { name: 'the finest output second, a third on the same grid', grids: [{ channels: 4, height: 5, width: 7 }, { channels: 3, height: 12, width: 20 }, { channels: 2, height: 12, width: 20 }] },
    { name: 'a single output', grids: [{ channels: 5, height: 9, width: 11 }] },
  ];
  for (const { name, grids } of cases) {
    for (const l2 of [false, true]) {
      it(`matches the JavaScript reference: ${name}, l2 ${l2}`, async () => {
        assembler = new FeatureAssembler(ort, { l2, threads: 1 });
        const maps = grids.map((g, i) => randomMap(g, 10 + i));
        const finest = grids[finestOutput(grids)];
        const features = await assembler.assemble(maps, false);
        expect([features.channels, features.height, features.width]).toEqual([grids.reduce((s, g) => s + g.channels, 0), finest.height, finest.width]);
        expect(features.half).toBeUndefined();
        expectClose(features.data, reference(maps, l2), FLOAT32_TOLERANCE);
      });
    }
  }

  it('keeps an all-zero cell zero under L2 normalisation (no NaN)', async () => {
    assembler = new FeatureAssembler(ort, { l2: true, threads: 1 });
    const map = randomMap({ channels: 4, height: 3, width: 3 }, 1);
    const data = map.data as Float32Array;
    for (let c = 0; c < 4; c++) data[c * 9 + 4] = 0;
    const features = await assembler.assemble([map], false);
    for (let c = 0; c < 4; c++) expect(features.data[c * 9 + 4]).toBe(0);
    expect(features.data.every(Number.isFinite)).toBe(true);
  });

  it('rounds to float16 exactly as float32ToFloat16 does (round to nearest even, subnormals, overflow)', async () => {
    assembler = new FeatureAssembler(ort, { l2: false, threads: 1 });
    const special = [0, -0, 1, -1, 65504, 65519.99, 65520, 1e6, -1e6, 2 ** -14, 2 ** -24, 2 ** -25, 3 * 2 ** -26, 2 ** -26, 1e-9, Infinity, -Infinity];
    // Values halfway between two halves (both parities), and just either side of halfway.
    const ties = [1 + 2 ** -11, 1 + 3 * 2 ** -11, 1 + 2 ** -11 + 2 ** -20, 1 + 2 ** -11 - 2 ** -20, 2 ** -15 + 2 ** -25];
    const rng = createRng(3);
    const random = Array.from({ length: 4000 }, () => rng.normal() * 10 ** rng.int(8) * 1e-4);
    const values = Float32Array.from([...special, ...ties, ...ties.map((v) => -v), ...random]);
    const map = new ort.Tensor('float32', values, [1, 1, 1, values.length]);
    const rounded = await assembler.assemble([map], true);
    expect([...rounded.half!]).toEqual([...float32ToFloat16(values)]);
    expect([...rounded.data]).toEqual([...float16ToFloat32(rounded.half!)]);
    expect(toHalfBits(65520)).toBe(0x7c00); // the reference itself overflows here, as IEEE says
  });

  it('gives the float32 result, rounded, when asked for float16', async () => {
    assembler = new FeatureAssembler(ort, { l2: true, threads: 1 });
    const maps = [randomMap({ channels: 6, height: 10, width: 14 }, 5), randomMap({ channels: 5, height: 5, width: 7 }, 6)];
    const exact = await assembler.assemble(maps, false);
    const rounded = await assembler.assemble(maps, true);
    expect([...rounded.half!]).toEqual([...float32ToFloat16(exact.data)]);
    expect([...rounded.data]).toEqual([...float16ToFloat32(rounded.half!)]);
  });

  it('serves every image size with one session per finest output and precision', async () => {
    assembler = new FeatureAssembler(ort, { l2: true, threads: 1 });
    for (let size = 2; size < 12; size++) {
      const maps = [randomMap({ channels: 3, height: 2 * size, width: 2 * size + 1 }, size), randomMap({ channels: 2, height: size, width: size + 1 }, 100 + size)];
      const features = await assembler.assemble(maps, size % 2 === 0);
      expectClose(features.data.subarray(0, 3 * 2 * size * (2 * size + 1)), reference(maps.slice(0, 1), true), size % 2 === 0 ? { atol: 0, rtol: 2 ** -11 } : FLOAT32_TOLERANCE);
    }
    expect(assembler.openSessions).toBe(2);
  });
});
