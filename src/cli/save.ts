import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface SaveArgs extends GlobalArgs, ImageSourceArgs {
  images: string[];
  output: string;
  json: boolean;
}

export const saveCommand: CommandModule<GlobalArgs, SaveArgs> = {
  command: 'save <images..>',
  describe: 'Write images and their signatures into an offline bundle',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('images', { type: 'string', array: true, demandOption: true, describe: 'registry images (pulled first when not in the store)' })
      .option('output', { alias: 'o', type: 'string', demandOption: true, describe: 'the bundle file to write (readable as oci-archive:FILE:HOST/REPO:TAG)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<SaveArgs>,
  handler: (args: ArgumentsCamelCase<SaveArgs>) =>
    run(args, async (ctx) => {
      const { save } = await import('../ops/bundle.ts');
      const r = await save(ctx, args.images, args.output, await pullOptions(args, ctx.report.warn));
      if (args.json) return (await import('./output.ts')).printJson(r);
      const { formatBytes } = await import('../ops/format.ts');
      process.stdout.write(`${r.file}: ${r.images.length} image(s), ${r.blobs} blob(s), ${formatBytes(r.bytes)}\n`);
      for (const i of r.images) process.stdout.write(`  ${i.reference}: ${i.digest}, ${i.layers} layer(s), ${i.signatures} signature(s), ${i.sigstoreSignatures} sigstore\n`);
    }, { changes: true }),
};
