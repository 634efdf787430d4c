import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ExitCode } from '../errors.ts';
import { PARSER_CONFIGURATION, run, type GlobalArgs } from './common.ts';

interface SignArgs extends GlobalArgs {
  image: string;
  key: string;
  identity: string | undefined;
  'passphrase-file': string | undefined;
  policy: string | undefined;
  'registries.d': string | undefined;
  'tls-verify': boolean | undefined;
  json: boolean;
}

export const signCommand: CommandModule<GlobalArgs, SignArgs> = {
  command: 'sign <image>',
  describe: "Sign a registry image's manifest into its look-aside signature store",
  builder: (y: Argv<GlobalArgs>) =>
    y
      // "--registries.d" is one option, not registries: { d }.
      .parserConfiguration(PARSER_CONFIGURATION)
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://HOST[:PORT]/REPO[:TAG|@DIGEST]' })
      .option('key', { type: 'string', demandOption: true, describe: 'secret key file (gpg --export-secret-keys [--armor] FINGERPRINT)' })
      .option('identity', { type: 'string', describe: 'the identity to vouch for, HOST/REPO:TAG', defaultDescription: "the image's reference" })
      .option('passphrase-file', { type: 'string', describe: "file whose first line unlocks the key" })
      .option('policy', { type: 'string', describe: 'afterwards, check that this trust policy accepts the image' })
      .option('registries.d', { type: 'string', describe: 'look-aside signature store configuration directory', defaultDescription: '/etc/containers/registries.d' })
      .option('tls-verify', { type: 'boolean', describe: 'require HTTPS and verified certificates (--tls-verify=false for a local plain-HTTP registry)', defaultDescription: 'true, or registries.conf' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .example('$0 sign --key release.key docker://registry.example.com/etcd:3.4', 'write the next signature-N for etcd:3.4') as Argv<SignArgs>,
  handler: (args: ArgumentsCamelCase<SignArgs>) =>
    run(args, async (ctx) => {
      const { sign } = await import('../ops/sign.ts');
      const result = await sign(ctx, {
        image: args.image,
        keyFile: args.key,
        ...(args.identity === undefined ? {} : { identity: args.identity }),
        ...(args['passphrase-file'] === undefined ? {} : { passphraseFile: args['passphrase-file'] }),
        ...(args.policy === undefined ? {} : { policyPath: args.policy }),
        ...(args['registries.d'] === undefined ? {} : { registriesDir: args['registries.d'] }),
        ...(args['tls-verify'] === undefined ? {} : { tlsVerify: args['tls-verify'] }),
      });
      // Signed, but the policy check the caller asked for failed: scripts must notice.
      if (result.policy !== undefined && !result.policy.accepted) process.exitCode = ExitCode.untrusted;
      if (args.json) return (await import('./output.ts')).printJson(result);
      process.stdout.write(`${result.image}: signed ${result.manifestDigest} as ${result.identity} with ${result.fingerprint}\n${result.signature}\n`);
    }),
};
