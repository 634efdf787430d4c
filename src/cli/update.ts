import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface UpdateArgs extends GlobalArgs, ImageSourceArgs {
  name: string | undefined;
  all: boolean;
  auto: boolean;
  set: string[];
  rebase: string | undefined;
  pull: boolean;
  'health-cmd': string | undefined;
  'ready-cmd': string | undefined;
  'ready-http': string | undefined;
  'ready-tcp': string | undefined;
  'ready-timeout': number | undefined;
  /** false with --no-ready (yargs reads --no-X as X=false). */
  ready: boolean;
  settle: number;
  runtime: string | undefined;
  json: boolean;
}

export const updateCommand: CommandModule<GlobalArgs, UpdateArgs> = {
  command: 'update [name]',
  describe: 'Update to the newest image, in the other slot; roll back if it fails',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('name', { type: 'string', describe: 'container name' })
      .option('all', { type: 'boolean', default: false, describe: 'update every installed container' })
      .option('auto', { type: 'boolean', default: false, describe: 'with --all: only containers installed with --auto-update' })
      .option('set', { type: 'string', array: true, default: [] as string[], describe: 'new template value KEY=VALUE (added to the recorded ones)' })
      .option('rebase', { type: 'string', describe: 'switch to another image reference' })
      .option('pull', { type: 'boolean', default: true, describe: 'ask the registry for a newer image; --no-pull uses only what the store holds' })
      .option('health-cmd', { type: 'string', describe: 'command run in the container (sh -c) that must succeed' })
      .option('ready-cmd', { type: 'string', describe: 'new readiness probe: a command run in the container (sh -c)' })
      .option('ready-http', { type: 'string', describe: 'new readiness probe: a URL that must answer 2xx/3xx' })
      .option('ready-tcp', { type: 'string', describe: 'new readiness probe: HOST:PORT that must accept connections' })
      .option('ready-timeout', { type: 'number', describe: 'seconds the readiness probe may take', defaultDescription: '60' })
      .option('ready', { type: 'boolean', default: true, describe: 'keep the recorded readiness probe; --no-ready drops it (the image\'s labels decide again)' })
      .option('runtime', { type: 'string', describe: 'switch the runtime: runc, crun, a path, or systemd (systemd runs the process itself)' })
      .option('settle', { type: 'number', default: 5, describe: 'seconds the new version must stay active' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .check((a) => {
        if (a.all === (a.name !== undefined)) throw new Error('name one container, or give --all');
        if (a.auto && !a.all) throw new Error('--auto goes with --all');
        if (a.runtime !== undefined && a.all) throw new Error('--runtime goes with one container, not --all');
        return true;
      }) as Argv<UpdateArgs>,
  handler: (args: ArgumentsCamelCase<UpdateArgs>) =>
    run(args, async (ctx) => {
      const { update } = await import('../ops/update.ts');
      const { parseSetOptions } = await import('../render/values.ts');
      const { BerthError } = await import('../errors.ts');
      const { checkReadiness } = await import('../runtime/readiness.ts');
      const ready = checkReadiness({ cmd: args['ready-cmd'], http: args['ready-http'], tcp: args['ready-tcp'], timeoutSec: args['ready-timeout'] }, '--ready-*');
      if (ready !== undefined && !args.ready) throw new BerthError('USAGE', '--no-ready and a --ready-* probe together', { hint: 'give one of them' });
      const options = {
        set: parseSetOptions(args.set),
        ...(args.rebase === undefined ? {} : { rebase: args.rebase }),
        noPull: !args.pull,
        pull: await pullOptions(args, ctx.report.warn),
        ...(args['health-cmd'] === undefined ? {} : { healthCmd: ['/bin/sh', '-c', args['health-cmd']] }),
        ...(ready !== undefined ? { ready } : !args.ready ? { ready: null } : {}),
        settleMs: args.settle * 1000,
        ...(args.runtime === undefined ? {} : { runtime: args.runtime }),
      };
      if (args.all) {
        // One ordered transaction (ops/update-all.ts): all staged, switched in dependency order, all rolled back if one fails.
        const { updateAll } = await import('../ops/update-all.ts');
        // Nothing installed: say so, without touching systemd.
        if ((await (await import('../ops/update.ts')).installedNames(ctx, args.auto)).length === 0) {
          if (args.json) return (await import('./output.ts')).printJson({ results: [], failed: [] });
          return void process.stdout.write(args.auto ? 'nothing to update: no container was installed with --auto-update\n' : 'nothing to update: no container is installed\n');
        }
        const r = await updateAll(ctx, args.auto, options);
        if (args.json) (await import('./output.ts')).printJson({ results: r.results, failed: r.results.filter((x) => x.error !== undefined).map((x) => `${x.name}: ${x.error}`) });
        else for (const x of r.results) process.stdout.write(`${x.message}${x.state ? ` [${x.state.activeState}/${x.state.subState}]` : ''}\n`);
        if (r.error) throw r.error;
        return;
      }
      const r = await update(ctx, args.name!, options);
      if (args.json) (await import('./output.ts')).printJson(r);
      else process.stdout.write(`${r.message}\n`);
    }, { changes: true }),
};
