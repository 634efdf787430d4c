import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface MountArgs extends GlobalArgs {
  image: string;
  dir: string;
  json: boolean;
}

export const mountCommand: CommandModule<GlobalArgs, MountArgs> = {
  command: 'mount <image> <dir>',
  describe: 'Mount a stored image read-only on DIR',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'reference, or image ID (a digest or its first 3+ hex digits)' })
      .positional('dir', { type: 'string', demandOption: true, describe: 'an existing directory' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<MountArgs>,
  handler: (args: ArgumentsCamelCase<MountArgs>) =>
    run(args, async (ctx) => {
      const { mountImage } = await import('../ops/mount.ts');
      const r = await mountImage(ctx, args.image, args.dir);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.dir}: ${r.digest} (read-only)\n`);
    }, { changes: true }),
};

interface UmountArgs extends GlobalArgs {
  dir: string;
  json: boolean;
}

export const umountCommand: CommandModule<GlobalArgs, UmountArgs> = {
  command: 'umount <dir>',
  describe: 'Unmount a directory mounted with berth mount',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('dir', { type: 'string', demandOption: true, describe: 'the mount point' })
      .option('json', { type: 'boolean', default: false, describe: 'print the result as JSON' }) as Argv<UmountArgs>,
  handler: (args: ArgumentsCamelCase<UmountArgs>) =>
    run(args, async (ctx) => {
      const { umountImage } = await import('../ops/mount.ts');
      const r = await umountImage(ctx, args.dir);
      if (args.json) return (await import('./output.ts')).printJson(r);
      process.stdout.write(`${r.dir}: unmounted\n`);
    }, { changes: true }),
};
