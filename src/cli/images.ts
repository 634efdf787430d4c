import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface ImagesArgs extends GlobalArgs {
  json: boolean;
}

export const imagesCommand: CommandModule<GlobalArgs, ImagesArgs> = {
  command: 'images',
  describe: 'List the images in the store',
  builder: (y: Argv<GlobalArgs>) => y.option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<ImagesArgs>,
  handler: (args: ArgumentsCamelCase<ImagesArgs>) =>
    run(args, async (ctx) => {
      const { images } = await import('../ops/images.ts');
      const { printJson, table } = await import('./output.ts');
      const { shortDigest } = await import('../image/digest.ts');
      const { formatBytes } = await import('../ops/format.ts');
      const list = await images(ctx);
      if (args.json) return printJson(list);
      process.stdout.write(
        table(
          ['REFERENCE', 'DIGEST', 'PLATFORM', 'SIZE', 'SIGNED', 'USED BY'],
          list.flatMap((i) =>
            (i.references.length ? i.references : ['<none>']).map((r) => [r, shortDigest(i.digest), i.platform, formatBytes(i.size), i.signatures ? 'yes' : 'no', i.usedBy.join(',') || '-']),
          ),
        ),
      );
    }),
};
