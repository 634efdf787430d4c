import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { PARSER_CONFIGURATION, run, type GlobalArgs } from './common.ts';

interface PublishArgs extends GlobalArgs {
  config: string | undefined;
  share: string | undefined;
  json: boolean;
}

interface AddArgs extends PublishArgs {
  image: string;
  key: string | undefined;
  'passphrase-file': string | undefined;
  policy: string | undefined;
  'registries.d': string | undefined;
  'tls-verify': boolean | undefined;
  'insecure-policy': boolean;
}

/** The configuration file, with the command line's overrides. */
async function config(args: PublishArgs & Partial<AddArgs>) {
  const { loadPublisherConfig, DEFAULT_PUBLISHER_CONF } = await import('../publish/config.ts');
  const c = await loadPublisherConfig(args.config ?? DEFAULT_PUBLISHER_CONF, args.config !== undefined);
  if (args.share !== undefined) c.share = args.share;
  if (args.key !== undefined) c.key = args.key;
  if (args['passphrase-file'] !== undefined) c.passphraseFile = args['passphrase-file'];
  if (args.policy !== undefined) c.policy = args.policy;
  if (args['registries.d'] !== undefined) c.registriesDir = args['registries.d'];
  if (args['tls-verify'] !== undefined) c.tlsVerify = args['tls-verify'];
  return c;
}

const addCommand: CommandModule<PublishArgs, AddArgs> = {
  command: 'add <image>',
  describe: 'Publish one image onto the share now: pull, explode, scan, decide, sign',
  builder: (y: Argv<PublishArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://HOST[:PORT]/REPO:TAG (or @DIGEST)' })
      .option('key', { type: 'string', describe: "the publisher's secret signing key", defaultDescription: 'key= of the configuration' })
      .option('passphrase-file', { type: 'string', describe: 'file whose first line unlocks the key' })
      .option('policy', { type: 'string', describe: 'trust policy file for the pull', defaultDescription: 'policy= or /etc/containers/policy.json' })
      .option('registries.d', { type: 'string', describe: 'look-aside signature store configuration directory', defaultDescription: '/etc/containers/registries.d' })
      .option('tls-verify', { type: 'boolean', describe: 'require HTTPS and verified certificates', defaultDescription: 'true, or registries.conf' })
      .option('insecure-policy', { type: 'boolean', default: false, describe: 'pull without a trust policy (accepts anything: never in production)' })
      .example('$0 publish add --share /srv/share docker://registry.example:5000/etcd:3.5', 'publish etcd:3.5 onto the share') as Argv<AddArgs>,
  handler: (args: ArgumentsCamelCase<AddArgs>) =>
    run(args, async (ctx) => {
      const { makePublisher } = await import('../publish/publisher.ts');
      if (args['insecure-policy']) ctx.report.warn('--insecure-policy: the trust policy is NOT enforced; any image is accepted');
      const publisher = await makePublisher(ctx, await config(args), { insecurePolicy: args['insecure-policy'] });
      const r = await publisher.publish(args.image);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.reference}: ${r.digest} ${r.decision.state}${r.decision.reasons.length > 0 ? ` (${r.decision.reasons.join('; ')})` : ''}\n`);
    }, { changes: true }),
};

interface DecideArgs extends PublishArgs {
  image: string;
  key: string | undefined;
  'passphrase-file': string | undefined;
  reason: string | undefined;
}

function decideCommand(state: 'approved' | 'blocked'): CommandModule<PublishArgs, DecideArgs> {
  const verb = state === 'approved' ? 'approve' : 'block';
  return {
    command: `${verb} <image>`,
    describe:
      state === 'approved'
        ? "Approve an image by hand: the publisher's signature, and its tag's ref moves to it if it is the newest"
        : 'Block an image by hand: its approval signature is removed and its tag moves back to the previous approved digest',
    builder: (y: Argv<PublishArgs>) =>
      y
        .positional('image', { type: 'string', demandOption: true, describe: 'a digest (sha256:…) or HOST/REPO:TAG as berth publish status lists it' })
        .option('key', { type: 'string', describe: "the publisher's secret signing key", defaultDescription: 'key= of the configuration' })
        .option('passphrase-file', { type: 'string', describe: 'file whose first line unlocks the key' })
        .option('reason', { type: 'string', describe: 'why, for berth publish status' }) as Argv<DecideArgs>,
    handler: (args: ArgumentsCamelCase<DecideArgs>) =>
      run(args, async (ctx) => {
        const c = await config(args);
        if (c.share === undefined) throw new (await import('../errors.ts')).BerthError('USAGE', 'no share is configured', { hint: 'set share=DIR in the publisher configuration, or give --share DIR' });
        const { loadApprovalKey } = await import('../publish/publisher.ts');
        const key = state === 'approved' ? await loadApprovalKey(c) : undefined;
        const { operatorDecision } = await import('../ops/share-decide.ts');
        const r = await operatorDecision(ctx, c.share, args.image, state, key, args.reason);
        if (args.json) return (await import('./output.ts')).printJson(r);
        process.stdout.write(`${r.reference}: ${r.digest} ${r.state}; ref -> ${r.ref ?? '(none)'}\n`);
      }, { changes: true }),
  };
}

const RANK = ['critical', 'high', 'medium', 'low', 'unknown'];

/** Each advisory once, the most severe first: "CVE-1(critical),CVE-2(low)". */
function findingsColumn(findings: readonly { id: string; severity: string }[]): string {
  const seen = new Map<string, string>();
  for (const f of findings) if (!seen.has(f.id)) seen.set(f.id, f.severity);
  if (seen.size === 0) return '-';
  return [...seen].sort((a, b) => RANK.indexOf(a[1]) - RANK.indexOf(b[1]) || a[0].localeCompare(b[0])).map(([id, sev]) => `${id}(${sev})`).join(',');
}

const statusCommand: CommandModule<PublishArgs, PublishArgs> = {
  command: 'status',
  describe: 'List every image on the share with its decision, findings, refs and retention',
  builder: (y: Argv<PublishArgs>) => y,
  handler: (args: ArgumentsCamelCase<PublishArgs>) =>
    run(args, async () => {
      const c = await config(args);
      if (c.share === undefined) throw new (await import('../errors.ts')).BerthError('USAGE', 'no share is configured', { hint: 'set share=DIR in the publisher configuration, or give --share DIR' });
      const { publishStatus } = await import('../ops/share-decide.ts');
      const entries = await publishStatus(c.share);
      const { printJson, table } = await import('./output.ts');
      if (args.json) return printJson(entries);
      if (entries.length === 0) return void process.stdout.write('no image is published\n');
      process.stdout.write(
        table(
          ['DIGEST', 'REFERENCE', 'STATE', 'BY', 'FINDINGS', 'REFS', 'RETIRED'],
          entries.map((e) => [
            e.digest.slice(0, 19),
            e.reference,
            e.state,
            e.by ?? '-',
            findingsColumn(e.findings),
            e.refs.length === 0 ? '-' : e.refs.map((r) => r.slice(r.lastIndexOf(':') + 1)).join(','),
            e.retired === undefined ? '-' : `until ${e.retired.removeAfter}`,
          ]),
        ),
      );
      for (const e of entries) if (e.state === 'blocked') process.stdout.write(`${e.digest.slice(0, 19)} blocked: ${e.reasons.join('; ')}\n`);
    }),
};

const runCommand: CommandModule<PublishArgs, AddArgs> = {
  command: 'run',
  describe: 'Run the publisher service: watch the repositories (polling, notifications), publish what is new',
  builder: (y: Argv<PublishArgs>) =>
    y.option('insecure-policy', { type: 'boolean', default: false, describe: 'pull without a trust policy (accepts anything: never in production)' }) as Argv<AddArgs>,
  handler: (args: ArgumentsCamelCase<AddArgs>) =>
    run(args, async (ctx) => {
      const { makePublisher } = await import('../publish/publisher.ts');
      const { startService } = await import('../publish/service.ts');
      if (args['insecure-policy']) ctx.report.warn('--insecure-policy: the trust policy is NOT enforced; any image is accepted');
      const c = await config(args);
      const publisher = await makePublisher(ctx, c, { insecurePolicy: args['insecure-policy'] });
      const service = await startService(ctx, c, publisher);
      ctx.report.step(`publishing ${c.repositories.map((r) => r.name).join(', ')} onto ${publisher.share}`);
      await new Promise<void>((resolve) => {
        const stop = () => resolve();
        process.once('SIGTERM', stop);
        process.once('SIGINT', stop);
      });
      await service.stop();
    }, { changes: true }),
};

export const publishCommand: CommandModule<GlobalArgs, PublishArgs> = {
  command: 'publish <command>',
  describe: 'The publisher: explode approved images once onto a shared read-only store',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .parserConfiguration(PARSER_CONFIGURATION)
      .option('config', { type: 'string', describe: 'publisher configuration file', defaultDescription: '/etc/berth/publisher.conf' })
      .option('share', { type: 'string', describe: 'the share (mounted read-write here)', defaultDescription: 'share= of the configuration' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .command(runCommand)
      .command(addCommand)
      .command(statusCommand)
      .command(decideCommand('approved'))
      .command(decideCommand('blocked'))
      .demandCommand(1, 'name a publish command: run, add, status, approve or block') as unknown as Argv<PublishArgs>,
  handler: () => {
    // the subcommands do the work
  },
};
