import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface VerifyArgs extends GlobalArgs {
  repair: boolean;
  json: boolean;
}

export const verifyCommand: CommandModule<GlobalArgs, VerifyArgs> = {
  command: 'verify',
  describe: 'Recover interrupted operations, re-hash the store, check the deployments; non-zero exit on a problem',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .option('repair', { type: 'boolean', default: false, describe: 'drop corrupted objects and records so the next pull restores them' })
      .option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<VerifyArgs>,
  handler: (args: ArgumentsCamelCase<VerifyArgs>) =>
    run(args, async (ctx) => {
      const { verify } = await import('../ops/images.ts');
      const { BerthError } = await import('../errors.ts');
      const r = await verify(ctx, args.repair);
      const { store, deployments } = r;
      if (args.json) (await import('./output.ts')).printJson(r);
      else {
        for (const a of r.recovered) process.stdout.write(`recovered: ${a}\n`);
        for (const p of store.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(`checked ${store.checked.objects} object(s), ${store.checked.layers} layer(s), ${store.checked.images} image(s): ${store.ok ? 'ok' : `${store.problems.length} problem(s)`}${store.repaired ? `, ${store.repaired} repaired` : ''}\n`);
        for (const p of deployments.problems) process.stdout.write(`problem: ${p}\n`);
        process.stdout.write(`checked ${deployments.containers} container(s): ${deployments.ok ? 'ok' : `${deployments.problems.length} problem(s)`}\n`);
      }
      if (!store.ok && !args.repair) {
        throw new BerthError('STORE_CORRUPT', `the store has ${store.problems.length} problem(s)`, { hint: 'run berth verify --repair, then pull the affected images again' });
      }
      if (!deployments.ok) {
        throw new BerthError('DEPLOYMENT_INCONSISTENT', `the deployments have ${deployments.problems.length} problem(s): ${deployments.problems[0]}`, {
          hint: 'run berth verify as root to recover interrupted operations; otherwise reinstall (berth uninstall, berth install) the container named',
        });
      }
    }, args.repair ? { changes: 'verify --repair' } : { reads: true }),
};
