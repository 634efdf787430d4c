import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { ExitCode } from '../errors.ts';
import { PARSER_CONFIGURATION, run, type GlobalArgs } from './common.ts';

interface SignArgs extends GlobalArgs {
  image: string;
  key: string | undefined;
  'sigstore-key': string | undefined;
  creds: string | undefined;
  'cert-dir': string | undefined;
  identity: string | undefined;
  'passphrase-file': string | undefined;
  policy: string | undefined;
  'registries.d': string | undefined;
  'tls-verify': boolean | undefined;
  json: boolean;
}

export const signCommand: CommandModule<GlobalArgs, SignArgs> = {
  command: 'sign <image>',
  describe: "Sign a registry image's manifest: OpenPGP into its look-aside store, or cosign into the registry",
  builder: (y: Argv<GlobalArgs>) =>
    y
      // "--registries.d" is one option, not registries: { d }.
      .parserConfiguration(PARSER_CONFIGURATION)
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://HOST[:PORT]/REPO[:TAG|@DIGEST]' })
      .option('key', { type: 'string', describe: 'OpenPGP secret key file (gpg --export-secret-keys [--armor] FINGERPRINT): the signature goes to the look-aside store' })
      .option('sigstore-key', { type: 'string', describe: "cosign private key (berth trust keygen, cosign generate-key-pair): the signature is added to the registry's sha256-HEX.sig tag; password from --passphrase-file, $COSIGN_PASSWORD or the terminal" })
      .conflicts('key', 'sigstore-key')
      .option('identity', { type: 'string', describe: 'the identity to vouch for, HOST/REPO:TAG', defaultDescription: "the image's reference" })
      .option('passphrase-file', { type: 'string', describe: 'file whose first line unlocks the key' })
      .option('creds', { type: 'string', describe: 'registry credentials USER:PASS (--sigstore-key pushes)', defaultDescription: 'from auth.json' })
      .option('cert-dir', { type: 'string', describe: 'CA certificates (*.crt) and a client certificate (*.cert, *.key) for registries', defaultDescription: '/etc/containers/certs.d/HOST[:PORT]' })
      .option('policy', { type: 'string', describe: 'afterwards, check that this trust policy accepts the image' })
      .option('registries.d', { type: 'string', describe: 'look-aside signature store configuration directory', defaultDescription: '/etc/containers/registries.d' })
      .option('tls-verify', { type: 'boolean', describe: 'require HTTPS and verified certificates (--tls-verify=false for a local plain-HTTP registry)', defaultDescription: 'true, or registries.conf' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .example('$0 sign --key release.key docker://registry.example.com/etcd:3.4', 'write the next signature-N for etcd:3.4')
      .example('COSIGN_PASSWORD=… $0 sign --sigstore-key cosign.key docker://registry.example.com/etcd:3.4', "add a cosign signature to the registry's etcd attachments") as Argv<SignArgs>,
  handler: (args: ArgumentsCamelCase<SignArgs>) =>
    run(args, async (ctx) => {
      const { sign } = await import('../ops/sign.ts');
      const result = await sign(ctx, {
        image: args.image,
        ...(args.key === undefined ? {} : { keyFile: args.key }),
        ...(args['sigstore-key'] === undefined ? {} : { sigstoreKeyFile: args['sigstore-key'], password: (await import('./password.ts')).cosignPassword({ passphraseFile: args['passphrase-file'] }) }),
        ...(args.creds === undefined ? {} : { creds: args.creds }),
        ...(args['cert-dir'] === undefined ? {} : { certDir: args['cert-dir'] }),
        ...(args.identity === undefined ? {} : { identity: args.identity }),
        ...(args['passphrase-file'] === undefined ? {} : { passphraseFile: args['passphrase-file'] }),
        ...(args.policy === undefined ? {} : { policyPath: args.policy }),
        ...(args['registries.d'] === undefined ? {} : { registriesDir: args['registries.d'] }),
        ...(args['tls-verify'] === undefined ? {} : { tlsVerify: args['tls-verify'] }),
      });
      // Signed, but the policy check the caller asked for failed: scripts must notice.
      if (result.policy !== undefined && !result.policy.accepted) process.exitCode = ExitCode.untrusted;
      if (args.json) return (await import('./output.ts')).printJson(result);
      const already = result.added === false ? ' (already there)' : '';
      process.stdout.write(`${result.image}: signed ${result.manifestDigest} as ${result.identity} with ${result.fingerprint}${already}\n${result.signature}\n`);
    }),
};
