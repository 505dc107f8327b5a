// Splits a dataset's images among federated clients (DESIGN "Partitions", paper section 4.1 and
// appendices C, D): `iid`, `domain`, `domain-blocks` and `dirichlet:α`. Seeded, deterministic, no
// empty client.

import { ConfigError, DataError } from '../errors.js';
import { shuffled, type Rng } from '../math/rng.js';

/** One image to place. */
export interface PartitionItem {
  /** Unique id (e.g. the image basename). */
  id: string;
  /** Domain name (city, site, camera...), required by the `domain` partitioner. */
  domain?: string;
  /** Most frequent class id of the image's label map, required by the `dirichlet` partitioner. */
  dominantClass?: number;
}

/** A parsed partition spec (see {@link parsePartitionSpec}). */
export type PartitionSpec = { kind: 'iid' } | { kind: 'domain' } | { kind: 'domain-blocks' } | { kind: 'dirichlet'; alpha: number };

/** Ids per client: `result[client]` lists that client's ids in input order. */
export type Partition = string[][];

/** Redraws allowed before `dirichlet` gives up on giving every client an image. */
export const DIRICHLET_MAX_DRAWS = 100;

const DIRICHLET_PATTERN = /^dirichlet:(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;

/**
 * Parses `iid`, `domain`, `domain-blocks` or `dirichlet:ALPHA` (ALPHA a decimal number > 0, e.g. `dirichlet:0.5`).
 * Surrounding whitespace is ignored.
 *
 * @throws ConfigError on anything else, listing the accepted forms
 */
export function parsePartitionSpec(text: string): PartitionSpec {
  const spec = text.trim();
  if (spec === 'iid') return { kind: 'iid' };
  if (spec === 'domain') return { kind: 'domain' };
  if (spec === 'domain-blocks') return { kind: 'domain-blocks' };
  if (DIRICHLET_PATTERN.test(spec)) {
    const alpha = Number(spec.slice('dirichlet:'.length));
    if (Number.isFinite(alpha) && alpha > 0) return { kind: 'dirichlet', alpha };
    throw new ConfigError(`partition "${text}": the Dirichlet alpha must be a finite number > 0`);
  }
  throw new ConfigError(`unknown partition "${text}"; expected iid, domain, domain-blocks or dirichlet:ALPHA (ALPHA > 0, e.g. dirichlet:0.5)`);
}

/**
 * Dispatches on `spec` to {@link partitionIid}, {@link partitionByDomain}, {@link partitionByDomainBlocks}
 * or {@link partitionDirichlet}.
 *
 * @returns [clients] lists of ids, each in input order; every item in exactly one list, none empty
 */
export function partition(items: readonly PartitionItem[], clients: number, spec: PartitionSpec, rng: Rng): Partition {
  switch (spec.kind) {
    case 'iid':
      return partitionIid(items, clients, rng);
    case 'domain':
      return partitionByDomain(items, clients, rng);
    case 'domain-blocks':
      return partitionByDomainBlocks(items, clients, rng);
    case 'dirichlet':
      return partitionDirichlet(items, clients, spec.alpha, rng);
    default:
      throw new ConfigError(`unknown partition kind ${JSON.stringify((spec as { kind: unknown }).kind)}`);
  }
}

/**
 * IID split: shuffle the items and deal them round-robin, so client sizes differ by at most one.
 *
 * @returns [clients] lists of ids in input order
 * @throws ConfigError when clients is not an integer in [1, items.length]
 * @throws DataError when ids repeat
 */
export function partitionIid(items: readonly PartitionItem[], clients: number, rng: Rng): Partition {
  checkCommon(items, clients);
  const order = shuffled(range(items.length), rng);
  const owner = new Int32Array(items.length);
  order.forEach((itemIndex, position) => {
    owner[itemIndex] = position % clients;
  });
  return collect(items, owner, clients);
}

/**
 * Domain split: whole domains go to clients. With as many clients as domains, one domain each; with
 * fewer, domains are placed largest first (ties by name) on the client holding the fewest images so
 * far (ties by lower client index), balancing image counts. Clients are then ordered by the
 * alphabetically first domain they hold, so `clients === domains` gives client i = i-th domain by name.
 * Fully determined by the items; `_rng` is accepted for a uniform partitioner signature.
 *
 * @returns [clients] lists of ids in input order
 * @throws ConfigError when an item has no domain, or clients exceed the number of domains
 */
export function partitionByDomain(items: readonly PartitionItem[], clients: number, _rng: Rng): Partition {
  checkCommon(items, clients);
  const counts = new Map<string, number>();
  for (const item of items) {
    if (item.domain === undefined || item.domain === '') {
      throw new ConfigError(`partition "domain" needs a domain for every image, but "${item.id}" has none (check the dataset's domainPattern)`);
    }
    counts.set(item.domain, (counts.get(item.domain) ?? 0) + 1);
  }
  const domains = [...counts.keys()].sort(compareNames);
  if (clients > domains.length) {
    throw new ConfigError(
      `partition "domain" cannot give ${clients} clients a domain each: there are only ${domains.length} domains (${domains.join(', ')})`,
    );
  }

  const largestFirst = domains.slice().sort((a, b) => (counts.get(b) ?? 0) - (counts.get(a) ?? 0) || compareNames(a, b));
  const load = new Array<number>(clients).fill(0);
  const domainsOf: string[][] = Array.from({ length: clients }, () => []);
  for (const domain of largestFirst) {
    let target = 0;
    for (let c = 1; c < clients; c++) if (load[c] < load[target]) target = c;
    load[target] += counts.get(domain) ?? 0;
    domainsOf[target].push(domain);
  }
  const clientOrder = range(clients).sort((a, b) => compareNames(firstName(domainsOf[a]), firstName(domainsOf[b])));
  const clientOfDomain = new Map<string, number>();
  clientOrder.forEach((groupIndex, client) => {
    for (const domain of domainsOf[groupIndex]) clientOfDomain.set(domain, client);
  });
  const owner = Int32Array.from(items, (item) => clientOfDomain.get(item.domain as string) ?? 0);
  return collect(items, owner, clients);
}

/**
 * Domain-block split (the paper's settings with more clients than domains, e.g. CamVid's 3 sequences
 * into 6 or 18 clients): every domain is cut into blocks of consecutive images (input order: for
 * video frames sorted by name, consecutive frames), each block one client. Blocks are given out one
 * at a time to the domain whose blocks would otherwise be largest (images / blocks; ties by name),
 * starting from one block per domain (the D'Hondt rule), so block sizes stay close to
 * images / clients. Within a domain, block sizes differ by at most one (the first blocks take the
 * extra images). Clients are ordered by domain name, then block order. Fully determined by the
 * items; `_rng` is accepted for a uniform partitioner signature.
 *
 * @returns [clients] lists of ids in input order
 * @throws ConfigError when an item has no domain, or there are fewer clients than domains (use `domain`)
 */
export function partitionByDomainBlocks(items: readonly PartitionItem[], clients: number, _rng: Rng): Partition {
  checkCommon(items, clients);
  const members = new Map<string, number[]>();
  items.forEach((item, index) => {
    if (item.domain === undefined || item.domain === '') {
      throw new ConfigError(`partition "domain-blocks" needs a domain for every image, but "${item.id}" has none (check the dataset's domainPattern)`);
    }
    const list = members.get(item.domain);
    if (list) list.push(index);
    else members.set(item.domain, [index]);
  });
  const domains = [...members.keys()].sort(compareNames);
  if (clients < domains.length) {
    throw new ConfigError(`partition "domain-blocks" needs at least one client per domain: ${clients} clients, ${domains.length} domains (use "domain" to group domains)`);
  }
  const blocks = new Map(domains.map((d) => [d, 1]));
  for (let given = domains.length; given < clients; given++) {
    let target: string | undefined;
    for (const d of domains) {
      const size = members.get(d)!.length;
      if (blocks.get(d)! >= size) continue;
      if (target === undefined || size / blocks.get(d)! > members.get(target)!.length / blocks.get(target)!) target = d;
    }
    blocks.set(target!, blocks.get(target!)! + 1);
  }
  const owner = new Int32Array(items.length);
  let client = 0;
  for (const d of domains) {
    const list = members.get(d)!;
    const count = blocks.get(d)!;
    const base = Math.floor(list.length / count);
    const extra = list.length % count;
    let position = 0;
    for (let b = 0; b < count; b++, client++) {
      const size = base + (b < extra ? 1 : 0);
      for (let m = position; m < position + size; m++) owner[list[m]] = client;
      position += size;
    }
  }
  return collect(items, owner, clients);
}

/**
 * Label-skewed split (DESIGN "Partitions"): items are grouped by `dominantClass`; for each class (in
 * ascending order) client proportions p ~ Dir(α) are drawn as normalised `rng.gamma(α)` variates, the
 * class's shuffled items are cut at `floor(cumsum(p) * count)` as in the common FL reference code
 * (`np.split(idx, (np.cumsum(p) * len(idx)).astype(int)[:-1])`), and piece j goes to client j.
 * If a client ends up empty the whole draw is repeated, continuing the same rng stream, up to
 * {@link DIRICHLET_MAX_DRAWS} times. Small α concentrates each class on few clients; large α
 * approaches an even split. When every gamma draw underflows to 0 (tiny α), the class goes whole
 * to one uniformly drawn client, the α -> 0 limit.
 *
 * @param alpha - Dirichlet concentration, > 0
 * @returns [clients] lists of ids in input order
 * @throws ConfigError when an item has no dominantClass, alpha <= 0, or no draw left every client
 *   with an image
 */
export function partitionDirichlet(items: readonly PartitionItem[], clients: number, alpha: number, rng: Rng): Partition {
  checkCommon(items, clients);
  if (!(Number.isFinite(alpha) && alpha > 0)) throw new ConfigError(`Dirichlet alpha must be a finite number > 0, got ${alpha}`);
  const byClass = new Map<number, number[]>();
  items.forEach((item, index) => {
    const cls = item.dominantClass;
    if (cls === undefined || !Number.isInteger(cls) || cls < 0) {
      throw new ConfigError(`partition "dirichlet" needs a dominant class for every image, but "${item.id}" has ${cls}`);
    }
    const members = byClass.get(cls);
    if (members === undefined) byClass.set(cls, [index]);
    else members.push(index);
  });
  const classes = [...byClass.keys()].sort((a, b) => a - b);

  const owner = new Int32Array(items.length);
  const sizes = new Int32Array(clients);
  const proportions = new Float64Array(clients);
  for (let draw = 0; draw < DIRICHLET_MAX_DRAWS; draw++) {
    sizes.fill(0);
    for (const cls of classes) {
      const members = shuffled(byClass.get(cls) as number[], rng);
      let total = 0;
      for (let c = 0; c < clients; c++) {
        proportions[c] = rng.gamma(alpha);
        total += proportions[c];
      }
      if (!(total > 0)) {
        proportions.fill(0);
        proportions[rng.int(clients)] = 1;
        total = 1;
      }
      let start = 0;
      let cumulative = 0;
      for (let c = 0; c < clients; c++) {
        cumulative += proportions[c] / total;
        const end = c === clients - 1 ? members.length : Math.min(members.length, Math.floor(cumulative * members.length));
        for (let m = start; m < end; m++) owner[members[m]] = c;
        sizes[c] += Math.max(0, end - start);
        start = Math.max(start, end);
      }
    }
    if (sizes.every((size) => size > 0)) return collect(items, owner, clients);
  }
  throw new ConfigError(
    `partition "dirichlet:${alpha}" left a client without images in ${DIRICHLET_MAX_DRAWS} draws ` +
      `(${items.length} images, ${classes.length} dominant classes, ${clients} clients); use a larger alpha or fewer clients`,
  );
}

function checkCommon(items: readonly PartitionItem[], clients: number): void {
  if (!Number.isInteger(clients) || clients < 1) throw new ConfigError(`number of clients must be an integer >= 1, got ${clients}`);
  if (clients > items.length) {
    throw new ConfigError(`cannot give ${clients} clients at least one image each: there are only ${items.length} images`);
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item.id)) throw new DataError(`image id "${item.id}" appears more than once`);
    seen.add(item.id);
  }
}

/** Ids per client in input order, from the owning client of each item. */
function collect(items: readonly PartitionItem[], owner: Int32Array, clients: number): Partition {
  const result: Partition = Array.from({ length: clients }, () => []);
  items.forEach((item, index) => result[owner[index]].push(item.id));
  return result;
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, i) => i);
}

/** Locale-independent string order (code units), so results do not depend on the machine. */
function compareNames(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function firstName(names: readonly string[]): string {
  return names.reduce((min, name) => (compareNames(name, min) < 0 ? name : min));
}
