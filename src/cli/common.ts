/** Options every command shares, and running a command's body with berth's error handling. */
import type { Argv } from 'yargs';
import type { OpContext } from '../ops/context.ts';

export interface GlobalArgs {
  root: string | undefined;
  quiet: boolean;
  'lock-timeout': number | undefined;
}

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('root', { type: 'string', describe: 'berth state directory', defaultDescription: '$BERTH_ROOT or /var/lib/berth' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress messages' })
    .option('lock-timeout', { type: 'number', describe: 'seconds to wait for another berth command to finish', defaultDescription: 'wait' });
}

/** Runs `body`; maps errors to exit statuses. Ops are imported lazily so --help stays fast. */
export async function run(args: GlobalArgs & { json?: boolean }, body: (ctx: OpContext) => Promise<void>): Promise<void> {
  const { defaultContext } = await import('../ops/context.ts');
  const { stderrReporter, reportError } = await import('./output.ts');
  const json = args.json === true;
  try {
    const lockTimeout = args['lock-timeout'];
    await body(defaultContext(args.root ?? process.env['BERTH_ROOT'], stderrReporter(args.quiet || json), lockTimeout === undefined ? undefined : lockTimeout * 1000));
  } catch (e) {
    process.exitCode = reportError(e, json);
  }
}

/** Options for commands that read images: where from, how to authenticate, which trust policy. */
export interface ImageSourceArgs {
  'tls-verify': boolean | undefined;
  'cert-dir': string | undefined;
  creds: string | undefined;
  platform: string | undefined;
  policy: string | undefined;
  'registries.d': string | undefined;
  'insecure-policy': boolean;
}

export function imageSourceOptions<T>(y: Argv<T>) {
  return y
    .option('tls-verify', { type: 'boolean', describe: 'require HTTPS and verified certificates (--tls-verify=false for a local plain-HTTP registry)', defaultDescription: 'true, or registries.conf' })
    .option('cert-dir', { type: 'string', describe: 'CA certificates (*.crt) and a client certificate (*.cert, *.key) for registries', defaultDescription: '/etc/containers/certs.d/HOST[:PORT]' })
    .option('creds', { type: 'string', describe: 'registry credentials USER:PASS', defaultDescription: 'from auth.json' })
    .option('platform', { type: 'string', describe: 'OS/ARCH[/VARIANT] to pick from an image index', defaultDescription: 'this host' })
    .option('policy', { type: 'string', describe: 'trust policy file', defaultDescription: '/etc/containers/policy.json' })
    .option('registries.d', { type: 'string', describe: 'look-aside signature store configuration directory', defaultDescription: '/etc/containers/registries.d' })
    .option('insecure-policy', { type: 'boolean', default: false, describe: 'run without a trust policy (accepts anything: never in production)' });
}

/** The ops/pull options these arguments describe. */
export async function pullOptions(args: ImageSourceArgs, warn: (m: string) => void) {
  const { parsePlatform } = await import('../image/manifest.ts');
  if (args['insecure-policy']) warn('--insecure-policy: the trust policy is NOT enforced; any image is accepted');
  return {
    source: {
      ...(args['tls-verify'] === undefined ? {} : { tlsVerify: args['tls-verify'] }),
      ...(args.creds === undefined ? {} : { creds: args.creds }),
      ...(args['cert-dir'] === undefined ? {} : { certDir: args['cert-dir'] }),
    },
    trust: {
      ...(args.policy === undefined ? {} : { policyPath: args.policy }),
      ...(args['registries.d'] === undefined ? {} : { registriesDir: args['registries.d'] }),
      insecurePolicy: args['insecure-policy'],
    },
    ...(args.platform === undefined ? {} : { platform: parsePlatform(args.platform) }),
  };
}
