import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface VerifyArgs extends GlobalArgs {
  repair: boolean;
  json: boolean;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Re-hash the store; non-zero exit on corruption',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('repair', { type: 'boolean', default: false, describe: 'drop corrupted objects and records so the next pull restores them' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<VerifyArgs>,
  handler: (args: ArgumentsCamelCase<VerifyArgs>) =>
    run(args, async (ctx) => {
      const { verify } = await import('../ops/images.ts');
      const { BerthError } = await import('../errors.ts');
      const r = await verify(ctx, args.repair);
      if (args.json) (await import('./output.ts')).printJson(r);
      else {
        for (const p of r.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(`checked ${r.checked.objects} object(s), ${r.checked.layers} layer(s), ${r.checked.images} image(s): ${r.ok ? 'ok' : `${r.problems.length} problem(s)`}${r.repaired ? `, ${r.repaired} repaired` : ''}\n`);
      }
      if (!r.ok && !args.repair) {
        throw new BerthError('STORE_CORRUPT', `the store has ${r.problems.length} problem(s)`, { hint: 'run berth verify --repair, then pull the affected images again' });
      }
    }),
};
