import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface PruneArgs extends GlobalArgs {
  json: boolean;
}

export const pruneCommand: CommandModule<GlobalArgs, PruneArgs> = {
  command: 'prune',
  describe: 'Free what no reference and no container uses',
  builder: (y: Argv<GlobalArgs>) => y.option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<PruneArgs>,
  handler: (args: ArgumentsCamelCase<PruneArgs>) =>
    run(args, async (ctx) => {
      const { prune } = await import('../ops/images.ts');
      const { formatBytes } = await import('../ops/format.ts');
      const r = await prune(ctx);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`freed ${formatBytes(r.bytes)}: ${r.images} image(s), ${r.layers} layer(s), ${r.objects} object(s)\n`);
    }, { changes: true }),
};
