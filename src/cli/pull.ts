import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { imageSourceOptions, pullOptions, run, type GlobalArgs, type ImageSourceArgs } from './common.ts';

interface PullArgs extends GlobalArgs, ImageSourceArgs {
  image: string;
  json: boolean;
}

export const pullCommand: CommandModule<GlobalArgs, PullArgs> = {
  command: 'pull <image>',
  describe: 'Fetch an image into the store (trust policy, digests)',
  builder: (y: Argv<GlobalArgs>) =>
    imageSourceOptions(y)
      .positional('image', { type: 'string', demandOption: true, describe: 'docker://…, oci:DIR[:REF], oci-archive:FILE[:REF], docker-archive:FILE[:REF] or a short name' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' })
      .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress; print only the digest' }) as Argv<PullArgs>,
  handler: (args: ArgumentsCamelCase<PullArgs>) =>
    run(args, async (ctx) => {
      const { pull } = await import('../ops/images.ts');
      const r = await pull(ctx, args.image, await pullOptions(args, ctx.report.warn));
      if (args.json) return (await import('./output.ts')).printJson({ reference: r.reference, digest: r.manifestDigest, layers: r.layers, fetchedLayers: r.fetchedLayers, newBytes: r.newBytes });
      // -q, as podman pull -q: only the image's digest, for scripts.
      if (args.quiet) return void process.stdout.write(`${r.manifestDigest}\n`);
      const { formatBytes } = await import('../ops/format.ts');
      const stored = r.layers - r.fetchedLayers;
      process.stdout.write(`${r.reference}: ${r.manifestDigest}\n  ${r.layers} layer(s): ${r.fetchedLayers} fetched, ${stored} already stored; ${formatBytes(r.newBytes)} of new objects\n`);
    }, { changes: true }),
};
