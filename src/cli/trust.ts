import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { PARSER_CONFIGURATION, run, type GlobalArgs } from './common.ts';

interface TrustArgs extends GlobalArgs {
  policy: string | undefined;
  'registries.d': string | undefined;
  json: boolean;
}

interface ShowArgs extends TrustArgs {}

interface SetArgs extends TrustArgs {
  scope: string;
  type: 'signedBy' | 'accept' | 'reject';
  pubkeys: string[] | undefined;
  lookaside: string | undefined;
}

interface DefaultArgs extends TrustArgs {
  type: 'accept' | 'reject';
}

const paths = (args: TrustArgs) => ({
  ...(args.policy === undefined ? {} : { policyPath: args.policy }),
  ...(args['registries.d'] === undefined ? {} : { registriesDir: args['registries.d'] }),
});

const showCommand: CommandModule<TrustArgs, ShowArgs> = {
  command: 'show',
  describe: 'Show the trust policy: requirement, keys and signature store per scope',
  builder: (y: Argv<TrustArgs>) => y as Argv<ShowArgs>,
  handler: (args: ArgumentsCamelCase<ShowArgs>) =>
    run(args, async () => {
      const { showTrust } = await import('../trust/manage.ts');
      const { printJson, table } = await import('./output.ts');
      const report = await showTrust(paths(args));
      if (args.json) return printJson(report);
      const keys = (e: (typeof report.entries)[number]) => (e.fingerprints ?? e.keys ?? []).join(',') || (e.note ?? '-');
      process.stdout.write(
        table(
          ['TRANSPORT', 'SCOPE', 'TYPE', 'KEYS', 'LOOKASIDE'],
          report.entries.map((e) => [e.transport, e.transport === 'default' ? '-' : e.scope === '' ? '(default)' : e.scope, e.type, keys(e), e.lookaside ?? '-']),
        ),
      );
    }),
};

const setCommand: CommandModule<TrustArgs, SetArgs> = {
  command: 'set <scope>',
  describe: 'Set the requirement for SCOPE (default, HOST[:PORT][/NAMESPACE…] or oci:/PATH)',
  builder: (y: Argv<TrustArgs>) =>
    y
      .positional('scope', { type: 'string', demandOption: true, describe: 'default, a registry scope such as registry.example.com/ns, or oci:/PATH' })
      .option('type', { alias: 't', choices: ['signedBy', 'accept', 'reject'] as const, demandOption: true, describe: 'signedBy: require a signature by --pubkeys; accept: no check; reject: refuse' })
      .option('pubkeys', { alias: ['f', 'pubkeysfile'], type: 'string', array: true, describe: 'public key file(s) (gpg --export), for signedBy' })
      .option('lookaside', { type: 'string', describe: "URL of the scope's signature store (file://, https://), recorded in registries.d" })
      .example('$0 trust set --type signedBy --pubkeys /etc/pki/release.gpg registry.example.com/infra', 'require signatures for that namespace')
      .example('$0 trust set --type reject docker.io', 'refuse Docker Hub') as Argv<SetArgs>,
  handler: (args: ArgumentsCamelCase<SetArgs>) =>
    run(args, async () => {
      const { setTrust } = await import('../trust/manage.ts');
      const r = await setTrust({
        ...paths(args),
        scope: args.scope,
        type: args.type,
        pubkeys: args.pubkeys ?? [],
        ...(args.lookaside === undefined ? {} : { lookaside: args.lookaside }),
      });
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.policy}: ${r.transport === 'default' ? 'default' : `${r.transport} ${JSON.stringify(r.scope)}`} -> ${JSON.stringify(r.requirement)}\n`);
      if (r.registriesFile !== undefined) process.stdout.write(`${r.registriesFile}: lookaside ${args.lookaside}\n`);
    }, { changes: args.policy === undefined }),
};

const defaultCommand: CommandModule<TrustArgs, DefaultArgs> = {
  command: 'default <type>',
  describe: 'Set what happens to images no scope names: accept or reject',
  builder: (y: Argv<TrustArgs>) => y.positional('type', { choices: ['accept', 'reject'] as const, demandOption: true }) as Argv<DefaultArgs>,
  handler: (args: ArgumentsCamelCase<DefaultArgs>) =>
    run(args, async () => {
      const { setDefaultTrust } = await import('../trust/manage.ts');
      const r = await setDefaultTrust(args.type, paths(args));
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.policy}: default -> ${JSON.stringify(r.requirement)}\n`);
    }, { changes: args.policy === undefined }),
};

export const trustCommand: CommandModule<GlobalArgs, TrustArgs> = {
  command: 'trust <command>',
  describe: 'Show or change the image trust policy (policy.json, registries.d)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      // "--registries.d" is one option, not registries: { d }.
      .parserConfiguration(PARSER_CONFIGURATION)
      .option('policy', { type: 'string', describe: 'trust policy file', defaultDescription: '/etc/containers/policy.json' })
      .option('registries.d', { type: 'string', describe: 'look-aside signature store configuration directory', defaultDescription: '/etc/containers/registries.d' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .command(showCommand)
      .command(setCommand)
      .command(defaultCommand)
      .demandCommand(1, 'name a trust command: show, set or default') as unknown as Argv<TrustArgs>,
  handler: () => {
    // the subcommands do the work
  },
};
