import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface ReadyCheckArgs extends GlobalArgs {
  cmd: string | undefined;
  http: string | undefined;
  tcp: string | undefined;
  timeout: number;
  runtime: string | undefined;
  container: string | undefined;
}

/** What a unit's ExecStartPost= runs to wait for readiness (render/readiness.ts); usable by hand too. */
export const readyCheckCommand: CommandModule<GlobalArgs, ReadyCheckArgs> = {
  command: 'ready-check',
  describe: 'Wait until a container is ready (what units run as ExecStartPost=)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('cmd', { type: 'string', describe: 'command run in the container (sh -c) until it exits 0' })
      .option('http', { type: 'string', describe: 'URL fetched until it answers 2xx or 3xx' })
      .option('tcp', { type: 'string', describe: 'HOST:PORT connected to until it accepts' })
      .option('timeout', { type: 'number', default: 60, describe: 'seconds before giving up' })
      .option('runtime', { type: 'string', describe: 'OCI runtime (for --cmd)' })
      .option('container', { type: 'string', describe: 'container name (for --cmd)' })
      .example('$0 ready-check --tcp 127.0.0.1:2379 --timeout 30', 'wait until etcd accepts connections') as Argv<ReadyCheckArgs>,
  handler: (args: ArgumentsCamelCase<ReadyCheckArgs>) =>
    run(args, async (ctx) => {
      const { checkReadiness } = await import('../runtime/readiness.ts');
      const { BerthError } = await import('../errors.ts');
      const { waitReady } = await import('../runtime/probe.ts');
      const readiness = checkReadiness({ cmd: args.cmd, http: args.http, tcp: args.tcp, timeoutSec: args.timeout }, 'ready-check');
      if (readiness === undefined) throw new BerthError('USAGE', 'ready-check: no probe given', { hint: 'give --cmd, --http or --tcp' });
      const n = await waitReady({ readiness, ...(args.runtime === undefined ? {} : { runtime: args.runtime }), ...(args.container === undefined ? {} : { container: args.container }) });
      ctx.report.step(`ready: ${readiness.kind} ${readiness.target} passed (attempt ${n})`);
    }),
};
