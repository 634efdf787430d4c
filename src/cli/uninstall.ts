import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface UninstallArgs extends GlobalArgs {
  name: string;
  json: boolean;
}

export const uninstallCommand: CommandModule<GlobalArgs, UninstallArgs> = {
  command: 'uninstall <name>',
  describe: 'Stop and remove an installed system container (idempotent)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'container name' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<UninstallArgs>,
  handler: (args: ArgumentsCamelCase<UninstallArgs>) =>
    run(args, async (ctx) => {
      const { uninstall } = await import('../ops/uninstall.ts');
      const result = await uninstall(ctx, args.name);
      if (args.json) (await import('./output.ts')).printJson(result);
      else process.stdout.write(result.removed ? `${result.name}: uninstalled\n` : `${result.name}: not installed, nothing to do\n`);
    }),
};
