import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface RmiArgs extends GlobalArgs {
  image: string;
}

export const rmiCommand: CommandModule<GlobalArgs, RmiArgs> = {
  command: 'rmi <image>',
  describe: 'Remove an image reference (by digest: the image)',
  builder: (y: Argv<GlobalArgs>) => y.positional('image', { type: 'string', demandOption: true, describe: 'reference or digest (prefix)' }) as Argv<RmiArgs>,
  handler: (args: ArgumentsCamelCase<RmiArgs>) =>
    run(args, async (ctx) => {
      const { rmi } = await import('../ops/images.ts');
      const r = await rmi(ctx, args.image);
      process.stdout.write(`removed ${r.removed.join(', ')}\n`);
    }, { changes: true }),
};
