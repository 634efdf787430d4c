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
  type: 'signedBy' | 'sigstoreSigned' | 'accept' | 'reject';
  pubkeys: string[] | undefined;
  lookaside: string | undefined;
  'fulcio-ca': string | undefined;
  'oidc-issuer': string | undefined;
  'subject-email': string | undefined;
  'rekor-key': string[] | undefined;
}

interface KeygenArgs extends TrustArgs {
  prefix: string;
  'passphrase-file': string | undefined;
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
      .option('type', { alias: 't', choices: ['signedBy', 'sigstoreSigned', 'accept', 'reject'] as const, demandOption: true, describe: 'signedBy: require an OpenPGP signature by --pubkeys; sigstoreSigned: a cosign signature by --pubkeys (or a --fulcio-ca certificate); accept: no check; reject: refuse' })
      .option('pubkeys', { alias: ['f', 'pubkeysfile'], type: 'string', array: true, describe: 'public key file(s): gpg --export for signedBy, PEM (cosign.pub) for sigstoreSigned' })
      .option('fulcio-ca', { type: 'string', describe: 'sigstoreSigned without keys: the Fulcio CA certificate(s) (PEM) that issue the signers\' certificates' })
      .option('oidc-issuer', { type: 'string', describe: 'with --fulcio-ca: the OIDC issuer the certificate must name' })
      .option('subject-email', { type: 'string', describe: 'with --fulcio-ca: the email the certificate must name' })
      .option('rekor-key', { type: 'string', array: true, describe: "sigstoreSigned: the Rekor log's public key(s) (PEM); needed with --fulcio-ca, with --pubkeys it makes a Rekor entry required" })
      .option('lookaside', { type: 'string', describe: "URL of the scope's signature store (file://, https://), recorded in registries.d" })
      .example('$0 trust set --type signedBy --pubkeys /etc/pki/release.gpg registry.example.com/infra', 'require signatures for that namespace')
      .example('$0 trust set --type sigstoreSigned --pubkeys cosign.pub registry.example.com/infra', 'require cosign signatures by that key (and read them from the registry)')
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
        ...(args['rekor-key'] === undefined ? {} : { rekorKeys: args['rekor-key'] }),
        ...(args['fulcio-ca'] === undefined
          ? {}
          : { fulcio: { caPath: args['fulcio-ca'], oidcIssuer: args['oidc-issuer'] ?? '', subjectEmail: args['subject-email'] ?? '' } }),
      });
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.policy}: ${r.transport === 'default' ? 'default' : `${r.transport} ${JSON.stringify(r.scope)}`} -> ${JSON.stringify(r.requirement)}\n`);
      if (r.registriesFile !== undefined) process.stdout.write(`${r.registriesFile}: ${Object.entries(r.registries ?? {}).map(([k, v]) => `${k}: ${v}`).join(', ')}\n`);
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

const keygenCommand: CommandModule<TrustArgs, KeygenArgs> = {
  command: 'keygen [prefix]',
  describe: 'Make a cosign key pair: PREFIX.key (encrypted) and PREFIX.pub, for berth sign --sigstore-key and trust set --type sigstoreSigned',
  builder: (y: Argv<TrustArgs>) =>
    y
      .positional('prefix', { type: 'string', default: 'cosign', describe: 'path and name of the two files, without .key/.pub' })
      .option('passphrase-file', { type: 'string', describe: "file whose first line is the key's password", defaultDescription: '$COSIGN_PASSWORD, else asked on the terminal' })
      .example('COSIGN_PASSWORD=… $0 trust keygen /etc/pki/release', 'write /etc/pki/release.key and /etc/pki/release.pub') as Argv<KeygenArgs>,
  handler: (args: ArgumentsCamelCase<KeygenArgs>) =>
    run(args, async () => {
      const { keygen } = await import('../trust/manage.ts');
      const { cosignPassword } = await import('./password.ts');
      const r = await keygen(args.prefix, cosignPassword({ passphraseFile: args['passphrase-file'], confirm: true }));
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`Private key written to ${r.privateKey}\nPublic key written to ${r.publicKey}\n${r.fingerprint}\n`);
    }),
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
      .command(keygenCommand)
      .demandCommand(1, 'name a trust command: show, set, default or keygen') as unknown as Argv<TrustArgs>,
  handler: () => {
    // the subcommands do the work
  },
};
