import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { run, type GlobalArgs } from './common.ts';

interface LogsArgs extends GlobalArgs {
  name: string;
  follow: boolean;
  lines: number;
}

export const logsCommand: CommandModule<GlobalArgs, LogsArgs> = {
  command: 'logs <name>',
  describe: 'Show a container\'s journal',
  builder: (y: Argv<GlobalArgs>) =>
    y
      .positional('name', { type: 'string', demandOption: true, describe: 'container name' })
      .option('follow', { alias: 'f', type: 'boolean', default: false, describe: 'keep printing new lines' })
      .option('lines', { alias: 'n', type: 'number', default: 50, describe: 'how many lines' }) as Argv<LogsArgs>,
  handler: (args: ArgumentsCamelCase<LogsArgs>) =>
    run(args, async () => {
      const { spawn } = await import('node:child_process');
      const { checkName } = await import('../deploy/paths.ts');
      checkName(args.name);
      const child = spawn('journalctl', ['--no-pager', '-u', `${args.name}.service`, '-n', String(args.lines), ...(args.follow ? ['-f'] : [])], { stdio: 'inherit' });
      await new Promise<void>((resolve) => child.once('exit', (code) => ((process.exitCode = code ?? 1), resolve())));
    }),
};
