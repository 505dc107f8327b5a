import { mkdir, writeFile, appendFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { AGGREGATION_OPTIONS, BACKBONE_OPTIONS, cacheDirOf, FEDERATION_PRESETS, MECHANISM_OPTIONS, openBackbone, parseMechanisms, PRESET_OPTION, resolveCliDevice, parseModules } from './shared.js';

export const simulateCommand: Command = {
  name: 'simulate',
  summary: 'Simulate a federation: partition the data, train participants, aggregate, evaluate per round (in one process, or over HTTP).',
  usage:
    'fuss simulate --data DIR --backbone ONNX --clients N --partition domain|domain-blocks|dirichlet:ALPHA|iid --strategy NAME\n' +
    '      [--modules W,E,C] [--regularizer none|fedprox|moon] [--robust RULE] [--attackers N --attack KIND]\n' +
    '      [--server-optimizer OPT] [--local-optimizer reset|keep] [--lr-schedule constant|cosine] [--augment VIEWS] [--selection RULE]\n' +
    '      [--preset paper] [--hold-out DOMAIN] --rounds R --local-steps S [--eval DIR] [--seed S] [--json] [--out DIR]\n' +
    '  fuss simulate ... --baseline local|centralized',
  options: [
    { name: 'data', type: 'string', arg: 'DIR', description: 'Training dataset shared out among the simulated participants', required: true },
    ...BACKBONE_OPTIONS,
    { name: 'clients', type: 'integer', arg: 'N', description: 'Number of participants', required: true, min: 1 },
    { name: 'partition', type: 'string', arg: 'SPEC', description: 'domain (by dataset.json domainPattern), domain-blocks (each domain cut into blocks of consecutive images, one per participant), dirichlet:ALPHA (by dominant class) or iid', default: 'domain' },
    ...AGGREGATION_OPTIONS,
    { name: 'max-samples', type: 'integer', arg: 'N', description: 'Largest sample count an update may claim (larger ones are refused, as by the server)', default: 1_000_000, min: 1 },
    { name: 'attackers', type: 'integer', arg: 'N', description: 'The first N participants send a poisoned update (with --attack)', default: 0, min: 0 },
    { name: 'attack', type: 'string', arg: 'KIND', description: 'scale:S (delta times S), signflip, noise:SIGMA (Gaussian replacement), samples:N (lies about its size), nan' },
    { name: 'regularizer-scope', type: 'string', arg: 'SCOPE', description: 'Parameters the regularizer acts on', default: 'nonlinear', choices: ['nonlinear', 'head'] },
    ...MECHANISM_OPTIONS,
    PRESET_OPTION,
    { name: 'rounds', type: 'integer', arg: 'R', description: 'Federated rounds', default: 5, min: 1 },
    { name: 'local-steps', type: 'integer', arg: 'S', description: 'Local training steps per round', default: 100, min: 1 },
    { name: 'k', type: 'integer', arg: 'K', description: 'Number of centroids (default: the classes of dataset.json)', min: 1 },
    { name: 'eval', type: 'string', arg: 'DIR', description: 'Labelled dataset to evaluate the global model on after every round' },
    { name: 'hold-out', type: 'string', arg: 'DOMAIN', description: 'Unseen-domain protocol: train without DOMAIN\'s images and evaluate on them (from --eval when it has that domain, else from --data)' },
    { name: 'eval-every', type: 'integer', arg: 'N', description: 'Evaluate every N rounds (always after the last)', default: 1, min: 1 },
    { name: 'baseline', type: 'string', arg: 'KIND', description: 'Instead of federating: local (each trains alone) or centralized (union), same step budget', choices: ['local', 'centralized'] },
    { name: 'engine', type: 'string', arg: 'NAME', description: 'Training engine', default: 'auto', choices: ['auto', 'onnx', 'tfjs'], env: 'FUSS_ENGINE' },
    { name: 'seed', type: 'integer', arg: 'S', description: 'Random seed (partition, initial model, training)', default: 0 },
    { name: 'out', type: 'string', arg: 'DIR', description: 'Folder for rounds.jsonl, summary.json, global.safetensors, global-round-<n>.safetensors per round and, with --selection, selected.safetensors' },
    { name: 'over-http', type: 'boolean', description: 'Run the federation through the real system: `fuss server` on loopback and one `fuss join` process per participant' },
    { name: 'database-url', type: 'string', arg: 'URL', description: 'With --over-http: the server\'s Postgres database (default: embedded, in the work folder)' },
    { name: 'json', type: 'boolean', description: 'Print the summary as JSON on stdout' },
  ],
  examples: [
    'fuss simulate --data ../shared/data/camvid/train --eval ../shared/data/camvid/val \\\n    --backbone ../shared/models/mobilenetv2-int8-features.onnx --clients 3 --partition domain \\\n    --strategy fedcc-kmeans --rounds 10 --local-steps 100 --out runs/fedcc',
    'fuss simulate ... --clients 6 --partition dirichlet:0.5 --baseline local',
    'fuss simulate ... --hold-out 0001TP --clients 4 --partition domain-blocks --preset paper --strategy fedavg',
    'fuss simulate ... --modules E,C --server-optimizer fedadam --local-optimizer keep --augment flip --selection loss',
    'fuss simulate ... --clients 6 --partition dirichlet:0.5 --attackers 1 --attack scale:1e30 --robust trimmed-mean',
    'fuss simulate ... --clients 3 --strategy fedcc-kmeans --rounds 10 --local-steps 100 --over-http --out runs/fedcc-http',
  ],
  presets: FEDERATION_PRESETS,
  async run(values, _positionals, io) {
    const core: typeof import('@fuss/core') = await import('@fuss/core');
    const log = (line: string) => io.stderr(`${line}\n`);
    const spec = core.parsePartitionSpec(values.partition as string);
    const modules = parseModules(values.modules as string);
    if (!core.STRATEGY_NAMES.includes(values.strategy as string)) {
      throw new UsageError(`unknown strategy "${values.strategy}"; choose one of ${core.STRATEGY_NAMES.join(', ')}`);
    }
    let robust: string;
    try {
      robust = core.formatRobustRule(core.parseRobustRule(values.robust as string));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const attackers = values.attackers as number;
    if ((attackers > 0) !== (values.attack !== undefined)) throw new UsageError('give --attackers N together with --attack KIND');
    let attack: import('@fuss/core').Attack | undefined;
    if (values.attack !== undefined) {
      try {
        attack = core.parseAttack(values.attack as string);
      } catch (err) {
        throw new UsageError((err as Error).message);
      }
      if (attackers > (values.clients as number)) throw new UsageError(`--attackers ${attackers} is more than --clients ${values.clients}`);
      if (values['over-http']) throw new UsageError('--attack runs in process only (participants over HTTP are honest)');
      if (values.baseline) throw new UsageError('--attack needs a federation; it does not combine with --baseline');
    }
    const mechanisms = await parseMechanisms(values, modules);
    let train = await core.openDataset(values.data as string);
    let evaluation = values.eval ? await core.openDataset(values.eval as string) : undefined;
    if (values['hold-out'] !== undefined) {
      const split = core.holdOutDomain(train, evaluation, values['hold-out'] as string);
      train = split.train;
      evaluation = split.evaluation;
      log(`holding out ${split.domain}: training on ${train.items.length} images of ${core.datasetDomains(train).join(', ')}, evaluating on its ${split.evaluation.items.length} images of ${split.evaluationFrom === 'evaluation' ? '--eval' : '--data'}`);
    }
    if (evaluation) core.requireLabels(evaluation);
    const k = (values.k as number | undefined) ?? train.info?.classes.length ?? evaluation?.info?.classes.length;
    if (k === undefined) throw new UsageError('give --k: the training data has no dataset.json to take the number of classes from');
    if (values['over-http'] && values.baseline) throw new UsageError('--over-http runs a federation; it does not combine with --baseline');
    if (values['over-http'] && (values.outputs || values['input-size'])) throw new UsageError('--over-http takes the backbone as it is: participants run it with its own descriptor (drop --outputs and --input-size)');
    const device = await resolveCliDevice(values, io);
    const backbone = await openBackbone(values, io, device);
    const engine = await core.createEngine(values.engine as string, { threads: values.threads as number, device, log });
    const out = values.out as string | undefined;
    if (out) await mkdir(out, { recursive: true });
    const options = {
      clients: values.clients as number,
      partition: spec,
      strategy: values.strategy as string,
      modules,
      regularizer: values.regularizer as 'none' | 'fedprox' | 'moon',
      regularizerScope: values['regularizer-scope'] as 'nonlinear' | 'head',
      rounds: values.rounds as number,
      localSteps: values['local-steps'] as number,
      k,
      seed: values.seed as number,
      cacheDir: cacheDirOf(values),
      evalEvery: values['eval-every'] as number,
      robust,
      maxSamples: values['max-samples'] as number,
      ...mechanisms,
      ...(attack ? { attack: { attackers, attack } } : {}),
    };
    const started = performance.now();
    const settings = {
      ...options, partition: values.partition, backbone: backbone.descriptor.id, engine: engine.name, ...(values.preset ? { preset: values.preset } : {}),
      ...(values['hold-out'] !== undefined ? { holdOut: values['hold-out'] } : {}), ...(attack ? { attack: { attackers, kind: core.formatAttack(attack) } } : {}),
    };
    try {
      if (values.baseline) {
        const result = await core.runBaseline(values.baseline as 'local' | 'centralized', train, evaluation, backbone, engine, options, log);
        const summary = { baseline: result.kind, settings, final: pick(result.final), runs: result.runs.map((r) => ({ ...r, metrics: pick(r.metrics) })), wallSeconds: seconds(started) };
        if (out) await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
        io.stdout(values.json ? `${JSON.stringify(summary)}\n` : `${result.kind} baseline: mIoU ${summary.final?.mIoU ?? '-'} (${summary.wallSeconds}s)\n`);
        return 0;
      }
      const writeGlobal = (global: { head: import('@fuss/core').HeadParams; centroids: Float32Array }, file = 'global.safetensors', round = options.rounds) =>
        writeFile(
          join(out!, file),
          core.encodeModel({
            head: global.head,
            centroids: global.centroids,
            channels: global.head.l2Bias.length,
            codeDim: global.centroids.length / k,
            k,
            backbone: { id: backbone.descriptor.id, sha256: backbone.descriptor.sha256, featureKey: core.featureConfigKey(backbone.descriptor) },
            round,
            version: round,
            info: settings,
          }),
        );
      if (values['over-http']) {
        const { simulateOverHttp } = await import('./simulate-over-http.js');
        const result = await simulateOverHttp(train, evaluation, backbone, engine, {
          ...options, evalEvery: options.evalEvery, threads: values.threads as number, engine: values.engine as string, device: device.name, backbonePath: values.backbone as string, databaseUrl: values['database-url'] as string | undefined, out,
        }, io);
        const summary = {
          settings: { ...settings, overHttp: true },
          partition: result.partition,
          final: pick(result.final),
          rounds: result.rounds.map((r) => ({ round: r.round, ...pick(r.metrics), aggregationSeconds: r.aggregationSeconds, roundSeconds: r.roundSeconds, ...(r.score ? { score: r.score } : {}) })),
          participants: result.participants,
          ...(result.selection ? { selection: { selectedVersion: result.selection.selectedVersion, stoppedAfterRound: result.selection.stoppedAfterRound, ...pick(result.selection.metrics) } } : {}),
          timing: result.timing,
          wallSeconds: seconds(started),
        };
        if (out) {
          await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
          await writeGlobal(result.global);
        }
        io.stdout(values.json ? `${JSON.stringify(summary)}\n` : `final mIoU ${summary.final?.mIoU ?? '-'} after ${options.rounds} rounds over HTTP (${summary.wallSeconds}s)\n`);
        return 0;
      }
      const rounds: unknown[] = [];
      const result = await core.simulateFederation(train, evaluation, backbone, engine, options, {
        log,
        onRound: async (record, global) => {
          const line = {
            round: record.round, ...pick(record.metrics), meanLoss: record.meanLoss, meanEntropy: record.meanEntropy, updateAgreement: record.updateAgreement, trainSeconds: record.trainSeconds,
            aggregateSeconds: record.aggregateSeconds, evaluateSeconds: record.evaluateSeconds, permutation: record.permutation,
            ...(record.refused ? { refused: record.refused } : {}), ...(record.robust ? { robust: record.robust } : {}), ...(record.score ? { score: record.score } : {}),
          };
          rounds.push(line);
          log(`round ${record.round}/${options.rounds}: ${record.metrics ? `mIoU ${record.metrics.mIoU.toFixed(2)}, ` : ''}loss ${record.meanLoss.toFixed(4)}, entropy ${record.meanEntropy.toFixed(2)}${record.updateAgreement === undefined ? '' : `, update agreement ${record.updateAgreement.toFixed(3)}`}, train ${record.trainSeconds.toFixed(1)}s`);
          if (out) {
            await appendFile(join(out, 'rounds.jsonl'), `${JSON.stringify(line)}\n`);
            await writeGlobal(global, `global-round-${record.round}.safetensors`, record.round);
          }
        },
      });
      // A poisoned federation can end with an unusable model: say whether every value stayed finite.
      const finite = [...Object.values(result.global.head), result.global.centroids].every((values) => values.every(Number.isFinite));
      const selection = result.selection
        ? { rule: result.selection.rule, selectedVersion: result.selection.selectedVersion, stoppedAfterRound: result.selection.stoppedAfterRound, ...pick(result.selection.metrics) }
        : undefined;
      const summary = { settings, partition: result.partition, final: pick(result.final), finite, rounds, ...(selection ? { selection } : {}), wallSeconds: seconds(started) };
      if (out) {
        await writeFile(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
        await writeGlobal(result.global);
        if (result.selection) await writeGlobal(result.selection.model, 'selected.safetensors', result.selection.selectedVersion);
      }
      const selected = selection ? `; selected version ${selection.selectedVersion}${selection.mIoU === undefined ? '' : `, mIoU ${selection.mIoU}`}` : '';
      io.stdout(values.json ? `${JSON.stringify(summary)}\n` : `final mIoU ${summary.final?.mIoU ?? '-'} after ${result.rounds.length} rounds${selected} (${summary.wallSeconds}s)\n`);
      return 0;
    } finally {
      await engine.dispose();
      await backbone.close();
    }
  },
};

function pick(metrics: { mIoU: number; pixelAccuracy: number; perClassIoU: Record<string, number | null> } | undefined) {
  if (!metrics) return undefined;
  const r = (v: number) => Math.round(v * 100) / 100;
  return { mIoU: r(metrics.mIoU), pixelAccuracy: r(metrics.pixelAccuracy), perClassIoU: Object.fromEntries(Object.entries(metrics.perClassIoU).map(([k, v]) => [k, v === null ? null : r(v)])) };
}

function seconds(started: number): number {
  return Math.round((performance.now() - started) / 10) / 100;
}
