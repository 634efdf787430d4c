import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface RollbackArgs extends GlobalArgs {
  name: string;
  json: boolean;
}

export const rollbackCommand: CommandModule<GlobalArgs, RollbackArgs> = {
  command: 'rollback <name>',
  describe: 'Switch a container back to its previous version',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'container name' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<RollbackArgs>,
  handler: (args: ArgumentsCamelCase<RollbackArgs>) =>
    run(args, async (ctx) => {
      const { rollback } = await import('../ops/rollback.ts');
      const r = await rollback(ctx, args.name);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.name}: rolled back to ${r.image} (${r.manifestDigest}) in slot ${r.slot}\n`);
    }, { changes: true }),
};
