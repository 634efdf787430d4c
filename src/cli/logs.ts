import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface LogsArgs extends GlobalArgs {
  name: string;
  follow: boolean;
  lines: number;
  json: boolean;
}

export const logsCommand: CommandModule<GlobalArgs, LogsArgs> = {
  command: 'logs <name>',
  describe: 'Show a container\'s journal',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'container name' })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new lines' })
      .option('lines', { alias: 'n', type: 'number', default: 50, describe: 'how many lines' })
      .option('json', { type: 'boolean', default: false, describe: 'one JSON object a line (journalctl -o json)' })
      .check((a) => {
        if (!(Number.isInteger(a.lines) && a.lines >= 0)) throw new Error('--lines: expected a whole number');
        return true;
      }) as Argv<LogsArgs>,
  handler: (args: ArgumentsCamelCase<LogsArgs>) =>
    run(args, async (ctx) => {
      const { spawn } = await import('node:child_process');
      const fs = await import('node:fs/promises');
      const { checkName } = await import('../deploy/paths.ts');
      const { BerthError } = await import('../errors.ts');
      checkName(args.name);
      // Installed: its unit is in /etc/systemd/system (readable by anyone), or its deployment is (where readable).
      const exists = async (p: string) => (await fs.lstat(p).catch((e: NodeJS.ErrnoException) => (e.code === 'ENOENT' ? undefined : true))) !== undefined;
      if (!(await exists(ctx.paths.unitFile(args.name))) && !(await exists(ctx.paths.current(args.name)))) {
        throw new BerthError('NOT_INSTALLED', `container ${args.name} is not installed`, { hint: 'berth list shows what is installed' });
      }
      const child = spawn('journalctl', ['--no-pager', '-u', `${args.name}.service`, '-n', String(args.lines), ...(args.json ? ['-o', 'json'] : []), ...(args.follow ? ['-f'] : [])], { stdio: 'inherit' });
      await new Promise<void>((resolve, reject) => {
        child.once('error', (e) => reject(new BerthError('MISSING_TOOL', `cannot run journalctl: ${e.message}`, { hint: 'berth logs reads the systemd journal; install systemd', cause: e })));
        child.once('exit', (code) => ((process.exitCode = code ?? 1), resolve()));
      });
    }),
};
