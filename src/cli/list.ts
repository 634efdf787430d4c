import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface ListArgs extends GlobalArgs {
  json: boolean;
}

export const listCommand: CommandModule<GlobalArgs, ListArgs> = {
  command: 'list',
  aliases: ['ps'],
  describe: 'List installed containers, their images and states',
  builder: (y: Argv<GlobalArgs>) => y.option('json', { type: 'boolean', default: false, describe: 'print as JSON' }) as Argv<ListArgs>,
  handler: (args: ArgumentsCamelCase<ListArgs>) =>
    run(args, async (ctx) => {
      const { list } = await import('../ops/list.ts');
      const { printJson, table } = await import('./output.ts');
      const { shortDigest } = await import('../image/digest.ts');
      const containers = await list(ctx);
      if (args.json) return printJson(containers);
      process.stdout.write(
        table(
          ['NAME', 'IMAGE', 'DIGEST', 'SLOT', 'STATE', 'SINCE'],
          containers.map((c) => [c.name, c.image, shortDigest(c.manifestDigest), String(c.slot), `${c.activeState}/${c.subState}`, c.since ?? '-']),
        ),
      );
    }, { reads: true }),
};
