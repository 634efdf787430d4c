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
