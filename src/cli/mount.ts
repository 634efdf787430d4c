import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface MountArgs extends GlobalArgs {
  image: string;
  dir: string;
}

export const mountCommand: CommandModule<GlobalArgs, MountArgs> = {
  command: 'mount <image> <dir>',
  describe: 'Mount a stored image read-only on DIR',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('image', { type: 'string', demandOption: true, describe: 'reference or digest (prefix)' })
      .positional('dir', { type: 'string', demandOption: true, describe: 'an existing directory' }) as Argv<MountArgs>,
  handler: (args: ArgumentsCamelCase<MountArgs>) =>
    run(args, async (ctx) => {
      const { mountImage } = await import('../ops/mount.ts');
      const r = await mountImage(ctx, args.image, args.dir);
      process.stdout.write(`${r.dir}: ${r.digest} (read-only)\n`);
    }, { changes: true }),
};

interface UmountArgs extends GlobalArgs {
  dir: string;
}

export const umountCommand: CommandModule<GlobalArgs, UmountArgs> = {
  command: 'umount <dir>',
  describe: 'Unmount a directory mounted with berth mount',
  builder: (y: Argv<GlobalArgs>) => y.positional('dir', { type: 'string', demandOption: true, describe: 'the mount point' }) as Argv<UmountArgs>,
  handler: (args: ArgumentsCamelCase<UmountArgs>) =>
    run(args, async (ctx) => {
      const { umountImage } = await import('../ops/mount.ts');
      const r = await umountImage(ctx, args.dir);
      process.stdout.write(`${r.dir}: unmounted\n`);
    }, { changes: true }),
};
