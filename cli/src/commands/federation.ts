import type { Command } from '../options.js';
import { UsageError } from '../options.js';
import { ADMIN_TOKEN_OPTION, RETRY_OPTIONS, SERVER_OPTION, withApi } from './remote.js';
import { AGGREGATION_OPTIONS, FEDERATION_PRESETS, MECHANISM_OPTIONS, parseMechanisms, parseModules, PRESET_OPTION } from './shared.js';

export const federationCreateCommand: Command = {
  name: 'federation create',
  summary: 'Create a federation on a server (admin): backbone, strategy, rounds and participants per round.',
  usage: 'fuss federation create --server URL --name NAME --backbone ONNX --k K --rounds R --local-steps S --max-participants N [options]',
  options: [
    SERVER_OPTION,
    ADMIN_TOKEN_OPTION,
    { name: 'name', type: 'string', arg: 'NAME', description: 'Name of the federation', required: true },
    { name: 'backbone', type: 'string', arg: 'ONNX', description: 'Backbone every participant must use (its sha256 and feature settings are recorded)', env: 'FUSS_BACKBONE', required: true },
    { name: 'k', type: 'integer', arg: 'K', description: 'Number of centroids (classes)', required: true, min: 1 },
    { name: 'code-dim', type: 'integer', arg: 'D', description: 'Code dimension of the head', default: 70, min: 1 },
    ...AGGREGATION_OPTIONS,
    { name: 'max-samples', type: 'integer', arg: 'N', description: 'Largest sample count a participant may report', default: 1_000_000, min: 1 },
    ...MECHANISM_OPTIONS,
    PRESET_OPTION,
    { name: 'rounds', type: 'integer', arg: 'R', description: 'Federated rounds', required: true, min: 1 },
    { name: 'local-steps', type: 'integer', arg: 'S', description: 'Local training steps per round', required: true, min: 1 },
    { name: 'min-participants', type: 'integer', arg: 'N', description: 'Updates needed to aggregate at the deadline', default: 1, min: 1 },
    { name: 'max-participants', type: 'integer', arg: 'N', description: 'Updates that complete a round at once', required: true, min: 1 },
    { name: 'deadline', type: 'integer', arg: 'SECONDS', description: 'Round deadline', default: 3600, min: 1 },
    { name: 'deadline-policy', type: 'string', arg: 'POLICY', description: 'Too few updates at the deadline: extend the round or fail it', default: 'extend', choices: ['extend', 'fail'] },
    { name: 'seed', type: 'integer', arg: 'S', description: 'Seed of the initial model, local training and aggregation', default: 0, min: 0 },
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print the federation as JSON' },
  ],
  examples: [
    'fuss federation create --server http://127.0.0.1:8080 --name road-scenes --backbone mobilenetv2-int8-features.onnx --k 11 --rounds 10 --local-steps 100 --max-participants 3',
    'fuss federation create ... --preset paper',
  ],
  presets: FEDERATION_PRESETS,
  async run(values, _positionals, io) {
    const core = await import('@fuss/core');
    const strategy = values.strategy as string;
    if (!core.STRATEGY_NAMES.includes(strategy)) throw new UsageError(`unknown strategy "${strategy}"; choose one of ${core.STRATEGY_NAMES.join(', ')}`);
    let robust: string;
    try {
      robust = core.formatRobustRule(core.parseRobustRule(values.robust as string));
    } catch (err) {
      throw new UsageError((err as Error).message);
    }
    const modules = parseModules(values.modules as string);
    const mechanisms = await parseMechanisms(values, modules);
    const backbone = await core.Backbone.open(values.backbone as string);
    let identity;
    try {
      identity = { id: backbone.descriptor.id, sha256: backbone.descriptor.sha256, featureKey: core.featureConfigKey(backbone.descriptor), channels: await backbone.featureChannels() };
    } finally {
      await backbone.close();
    }
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      const federation = await api.createFederation({
        name: values.name as string,
        backbone: identity,
        codeDim: values['code-dim'] as number,
        k: values.k as number,
        strategy: strategy as never,
        robust,
        maxSamples: values['max-samples'] as number,
        modules,
        regularizer: values.regularizer as 'none' | 'fedprox' | 'moon',
        ...mechanisms,
        rounds: values.rounds as number,
        localSteps: values['local-steps'] as number,
        minParticipants: values['min-participants'] as number,
        maxParticipants: values['max-participants'] as number,
        roundDeadlineSeconds: values.deadline as number,
        deadlinePolicy: values['deadline-policy'] as 'extend' | 'fail',
        seed: values.seed as number,
      });
      io.stdout(values.json ? `${JSON.stringify(federation)}\n` : `${federation.id}\n`);
      return 0;
    });
  },
};

export const participantAddCommand: Command = {
  name: 'participant add',
  summary: 'Enrol a participant in a federation (admin); prints its token once.',
  usage: 'fuss participant add --server URL --federation ID --name NAME [--json]',
  options: [
    SERVER_OPTION,
    ADMIN_TOKEN_OPTION,
    { name: 'federation', type: 'string', arg: 'ID', description: 'Federation id', required: true },
    { name: 'name', type: 'string', arg: 'NAME', description: 'Name of the participant (unique in the federation)', required: true },
    ...RETRY_OPTIONS,
    { name: 'json', type: 'boolean', description: 'Print the participant (with its token) as JSON' },
  ],
  examples: ['fuss participant add --server http://127.0.0.1:8080 --federation 6f1c... --name hospital-a'],
  async run(values, _positionals, io) {
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      const participant = await api.addParticipant(values.federation as string, values.name as string);
      io.stdout(values.json ? `${JSON.stringify(participant)}\n` : `${participant.token}\n`);
      return 0;
    });
  },
};

const PARTICIPANT_OPTIONS = [SERVER_OPTION, ADMIN_TOKEN_OPTION, { name: 'federation', type: 'string', arg: 'ID', description: 'Federation id', required: true }] as const;

export const participantListCommand: Command = {
  name: 'participant list',
  summary: 'List the participants of a federation (admin): enrolment, last seen, rounds contributed, revoked.',
  usage: 'fuss participant list --server URL --federation ID [--json]',
  options: [...PARTICIPANT_OPTIONS, ...RETRY_OPTIONS, { name: 'json', type: 'boolean', description: 'Print the participants as JSON' }],
  examples: ['fuss participant list --server http://127.0.0.1:8080 --federation 6f1c...'],
  async run(values, _positionals, io) {
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      const participants = await api.listParticipants(values.federation as string);
      if (values.json) {
        io.stdout(`${JSON.stringify(participants)}\n`);
      } else {
        io.stdout(`${['index', 'name', 'id', 'rounds', 'last seen', 'state'].join('\t')}\n`);
        for (const p of participants) io.stdout(`${[p.enrolmentIndex, p.name, p.id, p.roundsContributed, p.lastSeenAt ?? 'never', p.revoked ? `revoked ${p.revokedAt}` : 'active'].join('\t')}\n`);
      }
      return 0;
    });
  },
};

export const participantRevokeCommand: Command = {
  name: 'participant revoke',
  summary: "Revoke a participant (admin): its token is refused at once; its accepted updates stay counted.",
  usage: 'fuss participant revoke --server URL --federation ID --participant ID',
  options: [...PARTICIPANT_OPTIONS, { name: 'participant', type: 'string', arg: 'ID', description: 'Participant id (from participant list)', required: true }, ...RETRY_OPTIONS],
  examples: ['fuss participant revoke --server http://127.0.0.1:8080 --federation 6f1c... --participant 0b2e...'],
  async run(values, _positionals, io) {
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      const participant = await api.revokeParticipant(values.federation as string, values.participant as string);
      io.stdout(`revoked ${participant.name} (${participant.id}) at ${participant.revokedAt}\n`);
      return 0;
    });
  },
};

export const participantRotateCommand: Command = {
  name: 'participant rotate',
  summary: "Give a participant a new token (admin); prints it once; the old token is refused.",
  usage: 'fuss participant rotate --server URL --federation ID --participant ID [--json]',
  options: [...PARTICIPANT_OPTIONS, { name: 'participant', type: 'string', arg: 'ID', description: 'Participant id (from participant list)', required: true }, ...RETRY_OPTIONS, { name: 'json', type: 'boolean', description: 'Print the participant (with its new token) as JSON' }],
  examples: ['fuss participant rotate --server http://127.0.0.1:8080 --federation 6f1c... --participant 0b2e...'],
  async run(values, _positionals, io) {
    return withApi(values, values['admin-token'] as string | undefined, io, async (api) => {
      const participant = await api.rotateParticipantToken(values.federation as string, values.participant as string);
      io.stdout(values.json ? `${JSON.stringify(participant)}\n` : `${participant.token}\n`);
      return 0;
    });
  },
};
