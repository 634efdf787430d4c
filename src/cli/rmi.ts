import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface RmiArgs extends GlobalArgs {
  image: string;
  json: boolean;
}

export const rmiCommand: CommandModule<GlobalArgs, RmiArgs> = {
  command: 'rmi <image>',
  describe: 'Remove an image reference (by digest: the image)',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'reference, or image ID (a digest or its first 3+ hex digits)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<RmiArgs>,
  handler: (args: ArgumentsCamelCase<RmiArgs>) =>
    run(args, async (ctx) => {
      const { rmi } = await import('../ops/images.ts');
      const r = await rmi(ctx, args.image);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`removed ${r.removed.join(', ')}\n`);
    }, { changes: true }),
};
