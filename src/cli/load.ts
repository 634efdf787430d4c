import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface LoadArgs extends GlobalArgs, ImageSourceArgs {
  file: string;
  json: boolean;
}

export const loadCommand: CommandModule<GlobalArgs, LoadArgs> = {
  command: 'load <file>',
  describe: 'Import a bundle (berth save) under the trust policy, offline',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('file', { type: 'string', demandOption: true, describe: 'the bundle (an OCI archive written by berth save)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<LoadArgs>,
  handler: (args: ArgumentsCamelCase<LoadArgs>) =>
    run(args, async (ctx) => {
      const { load } = await import('../ops/bundle.ts');
      const loaded = await load(ctx, args.file, await pullOptions(args, ctx.report.warn));
      if (args.json) return (await import('./output.ts')).printJson(loaded);
      for (const i of loaded) {
        process.stdout.write(`${i.reference}: ${i.digest}\n  ${i.layers} layer(s): ${i.fetchedLayers} imported; ${i.signatures} signature(s), ${i.sigstoreSignatures} sigstore; accepted by ${i.requirement}\n`);
      }
    }, { changes: true }),
};
