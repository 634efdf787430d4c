/** Options every command shares, and running a command's body with berth's error handling. */
import type { Argv } from 'yargs';
import type { OpContext } from '../ops/context.ts';

export interface GlobalArgs {
  root: string | undefined;
  quiet: boolean;
  'lock-timeout': number | undefined;
}

/**
 * How berth's arguments are read, for the top level and every command that
 * sets its own (a command's parserConfiguration replaces the global one, it
 * does not add to it). --registries.d is a name, not a path into an object;
 * --set A=1 --set B=2 IMAGE and --pubkeys KEY SCOPE: each repeatable option
 * takes one value, so what follows stays positional.
 */
export const PARSER_CONFIGURATION = { 'dot-notation': false, 'greedy-arrays': false } as const;

export function globalOptions<T>(y: Argv<T>) {
  return y
    .option('root', { type: 'string', describe: 'berth state directory', defaultDescription: '$BERTH_ROOT or /var/lib/berth' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress messages' })
    .option('lock-timeout', { type: 'number', describe: 'seconds to wait for another berth command to finish', defaultDescription: 'wait' });
}

/** What a command does to the host, checked before anything else runs. */
export interface RunOptions {
  /**
   * It changes state (the store, containers, units, the trust policy): as
   * non-root it is refused at once, with exit 9. A string names the command
   * in the message (default: the command as typed).
   */
  changes?: boolean | string;
  /**
   * It reads berth's root: as non-root it says so when the root is not
   * readable (berth creates it for root only), rather than failing half-way.
   */
  reads?: boolean;
}

/** The command as typed (`trust set`), for messages. */
export function commandName(args: { _?: (string | number)[] }): string {
  return (args._ ?? []).map(String).join(' ') || 'command';
}

/** --root, else $BERTH_ROOT (an empty one is unset), else the default. */
async function rootDir(args: GlobalArgs): Promise<string | undefined> {
  const { BerthError } = await import('../errors.ts');
  if (args.root !== undefined) {
    if (args.root.trim() === '') throw new BerthError('USAGE', '--root: empty path', { hint: 'give a directory, or leave --root out for $BERTH_ROOT or /var/lib/berth' });
    return args.root;
  }
  const env = process.env['BERTH_ROOT'];
  return env === undefined || env.trim() === '' ? undefined : env;
}

function lockTimeoutMs(args: GlobalArgs): number | undefined {
  const t = args['lock-timeout'];
  return t === undefined ? undefined : t * 1000;
}

/** Runs `body`; maps errors to exit statuses. Ops are imported lazily so --help stays fast. */
export async function run(args: GlobalArgs & { json?: boolean; _?: (string | number)[] }, body: (ctx: OpContext) => Promise<void>, options: RunOptions = {}): Promise<void> {
  const { stderrReporter, reportError } = await import('./output.ts');
  const json = args.json === true;
  try {
    const { defaultContext } = await import('../ops/context.ts');
    const ctx = defaultContext(await rootDir(args), stderrReporter(args.quiet || json), lockTimeoutMs(args));
    const name = typeof options.changes === 'string' ? options.changes : commandName(args);
    if (options.changes) (await import('../ops/require-root.ts')).requireRoot(name);
    if (options.reads) await checkReadable(ctx.paths.root, name);
    await body(ctx);
  } catch (e) {
    process.exitCode = reportError(e, json, commandName(args));
  }
}

/** As non-root, a root directory that exists but cannot be read is refused up front, by name. */
async function checkReadable(root: string, command: string): Promise<void> {
  if (typeof process.getuid !== 'function' || process.getuid() === 0) return;
  const fs = await import('node:fs/promises');
  const { constants } = await import('node:fs');
  const { BerthError, errnoCode } = await import('../errors.ts');
  try {
    await fs.access(root, constants.R_OK | constants.X_OK);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return; // nothing installed, nothing stored: the command says so
    throw new BerthError('NOT_ROOT', `berth ${command}: ${root} is readable by root only`, { hint: `run: sudo berth ${command} ...`, cause: e });
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
    .option('registries.d', { type: 'string', describe: 'signature store configuration directory (look-aside stores, use-sigstore-attachments)', defaultDescription: '/etc/containers/registries.d' })
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
