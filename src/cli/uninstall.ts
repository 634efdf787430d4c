import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface UninstallArgs extends GlobalArgs {
  name: string | undefined;
  all: boolean;
  'purge-data': boolean;
  json: boolean;
}

export const uninstallCommand: CommandModule<GlobalArgs, UninstallArgs> = {
  command: 'uninstall [name]',
  describe: 'Remove a container without a trace (keeps its data)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', describe: 'container name' })
      .option('all', { type: 'boolean', default: false, describe: 'uninstall every container' })
      .option('purge-data', { type: 'boolean', default: false, describe: 'also delete the state directories (user data!)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .check((a) => {
        if (a.all === (a.name !== undefined)) throw new Error('name one container, or give --all');
        return true;
      }) as Argv<UninstallArgs>,
  handler: (args: ArgumentsCamelCase<UninstallArgs>) =>
    run(args, async (ctx) => {
      const { uninstall } = await import('../ops/uninstall.ts');
      const names = args.all ? await (await import('../ops/update.ts')).installedNames(ctx, false) : [args.name!];
      if (names.length === 0 && !args.json) process.stdout.write('nothing to uninstall: no container is installed\n');
      const results = [];
      for (const name of names) {
        const result = await uninstall(ctx, name, { purgeData: args['purge-data'] });
        results.push(result);
        if (!args.json) process.stdout.write(result.removed ? `${result.name}: uninstalled\n` : `${result.name}: not installed, nothing to do\n`);
      }
      if (args.json) (await import('./output.ts')).printJson(args.all ? results : results[0]);
    }, { changes: true }),
};
