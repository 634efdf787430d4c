import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';
import { listingOptions, type ListingArgs } from './format.ts';

type ImagesArgs = GlobalArgs & ListingArgs;

const FIELDS = ['ID', 'Digest', 'Repository', 'Tag', 'Reference', 'Platform', 'Size', 'Created', 'Pulled', 'Signed', 'UsedBy'] as const;
const FILTERS = ['reference', 'dangling', 'id', 'used'] as const;

/** A stored reference as podman's REPOSITORY and TAG: the tag is what follows the last ":" after the last "/". */
export function splitReference(ref: string): { repository: string; tag: string } {
  const at = ref.indexOf('@');
  if (at >= 0) return { repository: ref.slice(0, at), tag: '<none>' };
  const colon = ref.lastIndexOf(':');
  if (colon > ref.lastIndexOf('/') && colon > 0 && !ref.slice(0, colon).endsWith(':')) return { repository: ref.slice(0, colon), tag: ref.slice(colon + 1) };
  return { repository: ref, tag: '<none>' };
}

export const imagesCommand: CommandModule<GlobalArgs, ImagesArgs> = {
  command: 'images',
  describe: 'List the images in the store',
  builder: (y: Argv<GlobalArgs>) =>
    listingOptions(y, { quiet: 'print image IDs only', fields: FIELDS, filters: FILTERS })
      .example('$0 images -q', 'the image IDs, one a line')
      .example("$0 images --format '{{.Repository}}:{{.Tag}}' --filter reference='*etcd*'", 'one name a line')
      .example('$0 images --filter dangling=true', 'images no reference names') as unknown as Argv<ImagesArgs>,
  handler: (args: ArgumentsCamelCase<ImagesArgs>) =>
    run(args, async (ctx) => {
      const { images } = await import('../ops/images.ts');
      const { printListing, rowFilter, boolFilter } = await import('./format.ts');
      const { formatBytes } = await import('../ops/format.ts');
      type Image = Awaited<ReturnType<typeof images>>[number];
      const keep = rowFilter<{ image: Image; reference: string | undefined }>(args.filter, {
        reference: (_v, g) => ({ reference }) => reference !== undefined && (g.test(reference) || g.test(reference.replace(/^docker:\/\//, '')) || g.test(splitReference(reference).repository.replace(/^.*\//, ''))),
        dangling: (v) => {
          const want = boolFilter('dangling', v);
          return ({ image }) => (image.references.length === 0) === want;
        },
        id: (v) => ({ image }) => image.digest.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, '')),
        used: (v) => {
          const want = boolFilter('used', v);
          return ({ image }) => (image.usedBy.length > 0) === want;
        },
      });
      const list = await images(ctx);
      const items = list
        .flatMap((image) => (image.references.length ? image.references : [undefined]).map((reference) => ({ image, reference })))
        .filter(keep)
        .map(({ image, reference }) => {
          const { repository, tag } = reference === undefined ? { repository: '<none>', tag: '<none>' } : splitReference(reference);
          const hex = image.digest.replace(/^sha256:/, '');
          return {
            // --json/--format json: one entry per image, as before; rows per reference only in text.
            data: image,
            row: {
              ID: !args.trunc ? image.digest : hex.slice(0, 12),
              Digest: image.digest,
              Repository: repository,
              Tag: tag,
              Reference: reference ?? '<none>',
              Platform: image.platform,
              Size: formatBytes(image.size),
              Created: image.created ?? '-',
              Pulled: image.pulled,
              Signed: image.signatures > 0 || image.sigstoreSignatures > 0 ? 'yes' : 'no',
              UsedBy: image.usedBy.join(',') || '-',
            },
          };
        });
      const json = args.json || args.format?.trim() === 'json';
      printListing(args, json ? dedupe(items) : items, {
        fields: FIELDS,
        columns: [['REFERENCE', 'Reference'], ['DIGEST', 'ID'], ['PLATFORM', 'Platform'], ['SIZE', 'Size'], ['SIGNED', 'Signed'], ['USED BY', 'UsedBy']],
        quietField: 'ID',
      });
    }, { reads: true }),
};

/** One item per image (the JSON form lists images, not rows). */
function dedupe<T extends { data: { digest: string } }>(items: T[]): T[] {
  const seen = new Set<string>();
  return items.filter((i) => !seen.has(i.data.digest) && (seen.add(i.data.digest), true));
}
