import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';
import { listingOptions, type ListingArgs } from './format.ts';

type ListArgs = GlobalArgs & ListingArgs;

const FIELDS = ['Name', 'Image', 'ID', 'Digest', 'Slot', 'Unit', 'State', 'SubState', 'Since'] as const;
const FILTERS = ['name', 'status', 'ancestor', 'id'] as const;

export const listCommand: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  aliases: ['ps'],
  describe: 'List installed containers, their images and states',
  builder: (y: Argv<GlobalArgs>) =>
    listingOptions(y, { quiet: 'print container names only', fields: FIELDS, filters: FILTERS })
      .example("$0 list --filter status=failed --format '{{.Name}} {{.Since}}'", 'the failed containers')
      .example('$0 list -q --filter ancestor=*etcd*', 'containers running an etcd image') as unknown as Argv<ListArgs>,
  handler: (args: ArgumentsCamelCase<ListArgs>) =>
    run(args, async (ctx) => {
      const { list } = await import('../ops/list.ts');
      const { printListing, rowFilter } = await import('./format.ts');
      type Container = Awaited<ReturnType<typeof list>>[number];
      const keep = rowFilter<Container>(args.filter, {
        name: (_v, g) => (c) => g.test(c.name),
        status: (v) => (c) => c.activeState === v || c.subState === v,
        ancestor: (v, g) => (c) => g.test(c.image) || g.test(c.image.replace(/^docker:\/\//, '')) || c.manifestDigest.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, '')),
        id: (v) => (c) => c.manifestDigest.replace(/^sha256:/, '').startsWith(v.replace(/^sha256:/, '')),
      });
      const containers = (await list(ctx)).filter(keep);
      printListing(
        args,
        containers.map((c) => ({
          data: c,
          row: {
            Name: c.name,
            Image: c.image,
            ID: !args.trunc ? c.manifestDigest : c.manifestDigest.replace(/^sha256:/, '').slice(0, 12),
            Digest: c.manifestDigest,
            Slot: String(c.slot),
            Unit: c.unit,
            State: `${c.activeState}/${c.subState}`,
            SubState: c.subState,
            Since: c.since ?? '-',
          },
        })),
        { fields: FIELDS, columns: [['NAME', 'Name'], ['IMAGE', 'Image'], ['DIGEST', 'ID'], ['SLOT', 'Slot'], ['STATE', 'State'], ['SINCE', 'Since']], quietField: 'Name' },
      );
    }, { reads: true }),
};
