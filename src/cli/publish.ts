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

export const publishCommand: CommandModule<GlobalArgs, PublishArgs> = {
  command: 'publish <command>',
  describe: 'The publisher: explode approved images once onto a shared read-only store',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .parserConfiguration(PARSER_CONFIGURATION)
      .option('config', { type: 'string', describe: 'publisher configuration file', defaultDescription: '/etc/berth/publisher.conf' })
      .option('share', { type: 'string', describe: 'the share (mounted read-write here)', defaultDescription: 'share= of the configuration' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .command(addCommand)
      .demandCommand(1, 'name a publish command: add') as unknown as Argv<PublishArgs>,
  handler: () => {
    // the subcommands do the work
  },
};
