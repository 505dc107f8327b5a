import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ConfigError, DataError } from '../errors.js';
import { createRng } from '../math/rng.js';
import {
  parsePartitionSpec,
  partition,
  partitionByDomain,
  partitionByDomainBlocks,
  partitionDirichlet,
  partitionIid,
  type Partition,
  type PartitionItem,
  type PartitionSpec,
} from './partition.js';

// Fixed so CI is reproducible; fast-check prints the seed and path of any failure.
const FC_SEED = 0x7061;

/** Every item exactly once, no empty client, each client's ids in input order. */
function expectValidPartition(result: Partition, items: readonly PartitionItem[], clients: number): void {
  expect(result.length).toBe(clients);
  const position = new Map(items.map((item, i) => [item.id, i]));
  const seen = new Set<string>();
  for (const ids of result) {
    expect(ids.length).toBeGreaterThan(0);
    for (let i = 0; i < ids.length; i++) {
      expect(position.has(ids[i])).toBe(true);
      expect(seen.has(ids[i])).toBe(false);
      seen.add(ids[i]);
      if (i > 0) expect(position.get(ids[i])).toBeGreaterThan(position.get(ids[i - 1]) as number);
    }
  }
  expect(seen.size).toBe(items.length);
}

/** Items with ids img0..img(n-1), domains from a small set, dominant classes 0..4. */
const itemLists = fc
  .array(fc.record({ domain: fc.constantFrom('aachen', 'bonn', 'cologne', 'dresden', 'erfurt'), dominantClass: fc.integer({ min: 0, max: 4 }) }), {
    minLength: 1,
    maxLength: 60,
  })
  .map((rows) => rows.map((row, i): PartitionItem => ({ id: `img${i}`, ...row })));

const specs: fc.Arbitrary<PartitionSpec> = fc.oneof(
  fc.constant<PartitionSpec>({ kind: 'iid' }),
  fc.constant<PartitionSpec>({ kind: 'domain' }),
  fc.constant<PartitionSpec>({ kind: 'domain-blocks' }),
  fc.constantFrom(0.1, 1, 100).map((alpha): PartitionSpec => ({ kind: 'dirichlet', alpha })),
);

function makeItems(counts: Record<string, number>): PartitionItem[] {
  return Object.entries(counts).flatMap(([domain, n]) => Array.from({ length: n }, (_, i) => ({ id: `${domain}-${i}`, domain })));
}

describe('parsePartitionSpec', () => {
  it('parses the four forms', () => {
    expect(parsePartitionSpec('iid')).toEqual({ kind: 'iid' });
    expect(parsePartitionSpec(' domain ')).toEqual({ kind: 'domain' });
    expect(parsePartitionSpec('domain-blocks')).toEqual({ kind: 'domain-blocks' });
    expect(parsePartitionSpec('dirichlet:0.5')).toEqual({ kind: 'dirichlet', alpha: 0.5 });
    expect(parsePartitionSpec('dirichlet:2')).toEqual({ kind: 'dirichlet', alpha: 2 });
    expect(parsePartitionSpec('dirichlet:.1')).toEqual({ kind: 'dirichlet', alpha: 0.1 });
    expect(parsePartitionSpec('dirichlet:1e-3')).toEqual({ kind: 'dirichlet', alpha: 0.001 });
  });

  it('rejects anything else with a ConfigError listing the accepted forms', () => {
    for (const bad of ['', 'IID', 'random', 'dirichlet', 'dirichlet:', 'dirichlet:0', 'dirichlet:-1', 'dirichlet:abc', 'dirichlet:1,5', 'dirichlet:0x10']) {
      expect(() => parsePartitionSpec(bad)).toThrow(ConfigError);
    }
    expect(() => parsePartitionSpec('random')).toThrow(/iid, domain, domain-blocks or dirichlet:ALPHA/);
    expect(() => parsePartitionSpec('dirichlet:0')).toThrow(/> 0/);
  });
});

describe('partition (properties)', () => {
  it('places every item exactly once, leaves no client empty, and keeps input order', () => {
    fc.assert(
      fc.property(itemLists, specs, fc.integer({ min: 1, max: 8 }), fc.integer(), (items, spec, clients, seed) => {
        try {
          expectValidPartition(partition(items, clients, spec, createRng(seed)), items, clients);
        } catch (error) {
          // Impossible requests (too few images or domains, or a Dirichlet draw that keeps leaving a
          // client empty) must fail with a ConfigError, nothing else.
          expect(error).toBeInstanceOf(ConfigError);
          const domains = new Set(items.map((item) => item.domain)).size;
          if (spec.kind === 'iid') expect(clients).toBeGreaterThan(items.length);
          if (spec.kind === 'domain') expect(clients).toBeGreaterThan(domains);
          if (spec.kind === 'domain-blocks') expect(clients < domains || clients > items.length).toBe(true);
        }
      }),
      { seed: FC_SEED, numRuns: 300 },
    );
  });

  it('is deterministic for a seed', () => {
    fc.assert(
      fc.property(itemLists, specs, fc.integer({ min: 1, max: 4 }), fc.integer(), (items, spec, clients, seed) => {
        const run = (): Partition | string => {
          try {
            return partition(items, clients, spec, createRng(seed));
          } catch (error) {
            return (error as Error).message;
          }
        };
        expect(run()).toEqual(run());
      }),
      { seed: FC_SEED, numRuns: 200 },
    );
  });

  it('usually differs between seeds (iid and dirichlet)', () => {
    const items = Array.from({ length: 30 }, (_, i): PartitionItem => ({ id: `img${i}`, dominantClass: i % 3 }));
    for (const spec of [{ kind: 'iid' }, { kind: 'dirichlet', alpha: 1 }] as const) {
      const distinct = new Set<string>();
      for (let seed = 0; seed < 20; seed++) distinct.add(JSON.stringify(partition(items, 3, spec, createRng(seed))));
      expect(distinct.size).toBeGreaterThanOrEqual(18);
    }
  });
});

describe('partitionIid', () => {
  it('deals sizes that differ by at most one', () => {
    const items = Array.from({ length: 23 }, (_, i) => ({ id: `img${i}` }));
    const sizes = partitionIid(items, 5, createRng(1)).map((ids) => ids.length);
    expect(sizes.sort()).toEqual([4, 4, 5, 5, 5]);
  });

  it('rejects more clients than images, bad client counts and duplicate ids', () => {
    const items = [{ id: 'a' }, { id: 'b' }];
    expect(() => partitionIid(items, 3, createRng(0))).toThrow(/3 clients .* only 2 images/);
    expect(() => partitionIid(items, 0, createRng(0))).toThrow(ConfigError);
    expect(() => partitionIid(items, 1.5, createRng(0))).toThrow(ConfigError);
    expect(() => partitionIid([{ id: 'a' }, { id: 'a' }], 1, createRng(0))).toThrow(DataError);
  });
});

describe('partitionByDomain', () => {
  const counts = { aachen: 5, bonn: 3, cologne: 2, dresden: 2 };

  it('gives one domain per client, in name order, when clients equal domains', () => {
    const items = makeItems({ bonn: 1, aachen: 2, dresden: 4, cologne: 3 });
    const result = partitionByDomain(items, 4, createRng(0));
    expect(result.map((ids) => ids[0].split('-')[0])).toEqual(['aachen', 'bonn', 'cologne', 'dresden']);
    expect(result.map((ids) => ids.length)).toEqual([2, 1, 3, 4]);
  });

  it('groups whole domains, largest first onto the smallest client (2 clients)', () => {
    // aachen(5) -> c0, bonn(3) -> c1, cologne(2) -> c1 (5 vs 5), dresden(2) -> c0 on the tie.
    const result = partitionByDomain(makeItems(counts), 2, createRng(0));
    expect(result.map((ids) => [...new Set(ids.map((id) => id.split('-')[0]))])).toEqual([
      ['aachen', 'dresden'],
      ['bonn', 'cologne'],
    ]);
  });

  it('groups whole domains (3 clients)', () => {
    // aachen -> c0, bonn -> c1, cologne -> c2, dresden -> c2 (load 2 is the smallest).
    const result = partitionByDomain(makeItems(counts), 3, createRng(0));
    expect(result.map((ids) => ids.length)).toEqual([5, 3, 4]);
    expect(result[2].every((id) => id.startsWith('cologne') || id.startsWith('dresden'))).toBe(true);
  });

  it('breaks ties between equal-sized domains by name', () => {
    const result = partitionByDomain(makeItems({ d: 2, c: 2, b: 2, a: 2 }), 2, createRng(0));
    // a -> c0, b -> c1, c -> c0, d -> c1.
    expect(result.map((ids) => [...new Set(ids.map((id) => id.split('-')[0]))])).toEqual([
      ['c', 'a'],
      ['d', 'b'],
    ]);
  });

  it('rejects more clients than domains and items without a domain', () => {
    expect(() => partitionByDomain(makeItems(counts), 5, createRng(0))).toThrow(/only 4 domains/);
    expect(() => partitionByDomain([...makeItems(counts), { id: 'orphan.png' }], 2, createRng(0))).toThrow(/"orphan.png" has none/);
  });
});

describe('partitionByDomainBlocks', () => {
  // CamVid's training sequences: 62 / 101 / 204 frames.
  const camvid = { '0001TP': 62, '0006R0': 101, '0016E5': 204 };
  const domainOfId = (id: string) => id.split('-')[0];

  it('cuts CamVid into 6 and 18 clients of consecutive frames, blocks per sequence by the D\'Hondt rule', () => {
    const items = makeItems(camvid);
    const six = partitionByDomainBlocks(items, 6, createRng(0));
    expectValidPartition(six, items, 6);
    expect(six.map((ids) => ids.length)).toEqual([62, 51, 50, 68, 68, 68]);
    expect(six.map((ids) => domainOfId(ids[0]))).toEqual(['0001TP', '0006R0', '0006R0', '0016E5', '0016E5', '0016E5']);
    const eighteen = partitionByDomainBlocks(items, 18, createRng(0));
    expectValidPartition(eighteen, items, 18);
    const perDomain = (result: string[][]) => Object.fromEntries(Object.keys(camvid).map((d) => [d, result.filter((ids) => domainOfId(ids[0]) === d).length]));
    expect(perDomain(eighteen)).toEqual({ '0001TP': 3, '0006R0': 5, '0016E5': 10 });
    const sizes = eighteen.map((ids) => ids.length);
    expect(Math.max(...sizes) - Math.min(...sizes)).toBeLessThanOrEqual(1);
    // Every block is one domain's run of consecutive items.
    const position = new Map(items.map((item, i) => [item.id, i]));
    for (const ids of eighteen) {
      expect(new Set(ids.map(domainOfId)).size).toBe(1);
      expect(position.get(ids.at(-1)!)! - position.get(ids[0])!).toBe(ids.length - 1);
    }
  });

  it('equals the domain partition with one client per domain, and never makes a block empty', () => {
    const items = makeItems({ a: 1, b: 9 });
    expect(partitionByDomainBlocks(items, 2, createRng(0))).toEqual(partitionByDomain(items, 2, createRng(0)));
    expect(partitionByDomainBlocks(items, 10, createRng(0)).map((ids) => ids.length)).toEqual([1, 1, 1, 1, 1, 1, 1, 1, 1, 1]);
  });

  it('rejects fewer clients than domains and items without a domain', () => {
    expect(() => partitionByDomainBlocks(makeItems(camvid), 2, createRng(0))).toThrow(/at least one client per domain.*use "domain"/);
    expect(() => partitionByDomainBlocks([...makeItems(camvid), { id: 'orphan.png' }], 4, createRng(0))).toThrow(/"orphan.png" has none/);
  });
});

describe('partitionDirichlet', () => {
  /** Mean over classes of the largest share of that class held by one client. */
  function meanMaxShare(result: Partition, items: readonly PartitionItem[], classes: number): number {
    const clientOf = new Map<string, number>();
    result.forEach((ids, c) => ids.forEach((id) => clientOf.set(id, c)));
    let total = 0;
    for (let cls = 0; cls < classes; cls++) {
      const members = items.filter((item) => item.dominantClass === cls);
      const perClient = new Array<number>(result.length).fill(0);
      for (const item of members) perClient[clientOf.get(item.id) as number]++;
      total += Math.max(...perClient) / members.length;
    }
    return total / classes;
  }

  const items = Array.from({ length: 600 }, (_, i): PartitionItem => ({ id: `img${i}`, dominantClass: i % 10 }));

  it('is skewed for small alpha and near-uniform for large alpha', () => {
    const skewed = meanMaxShare(partitionDirichlet(items, 5, 0.05, createRng(3)), items, 10);
    const even = meanMaxShare(partitionDirichlet(items, 5, 1000, createRng(3)), items, 10);
    // Uniform would be 0.2 per client; Dir(0.05) puts nearly all of a class on one client.
    expect(skewed).toBeGreaterThan(0.8);
    expect(even).toBeLessThan(0.3);
  });

  it('cuts a class like np.split at floor(cumsum(p) * n)', () => {
    // A single client gets everything; with alpha huge, 2 clients split 10 items 5/5 (p ~ 0.5 each).
    const ten = Array.from({ length: 10 }, (_, i): PartitionItem => ({ id: `x${i}`, dominantClass: 0 }));
    expect(partitionDirichlet(ten, 1, 0.5, createRng(0))).toEqual([ten.map((item) => item.id)]);
    const halves = partitionDirichlet(ten, 2, 1e9, createRng(0)).map((ids) => ids.length);
    expect(halves.sort()).toEqual([5, 5]);
  });

  it('gives up with a ConfigError when clients keep ending up empty', () => {
    // With alpha = 1e-9 a class goes whole to one client, so a single class never covers 2 clients.
    const oneClass = Array.from({ length: 5 }, (_, i): PartitionItem => ({ id: `x${i}`, dominantClass: 0 }));
    expect(() => partitionDirichlet(oneClass, 2, 1e-9, createRng(0))).toThrow(/left a client without images in 100 draws/);
  });

  it('rejects items without a dominant class and bad alpha', () => {
    expect(() => partitionDirichlet([{ id: 'a', dominantClass: 0 }, { id: 'b' }], 1, 1, createRng(0))).toThrow(/"b" has undefined/);
    expect(() => partitionDirichlet([{ id: 'a', dominantClass: 0 }], 1, 0, createRng(0))).toThrow(ConfigError);
  });
});
