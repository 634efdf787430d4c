/**
 * berth's command line. Each command lives in its own file and imports its
 * operation only when it runs, so `berth --help` loads yargs and little else.
 */
import { createRequire } from 'node:module';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../errors.ts';
import { globalOptions } from './common.ts';
import { agentCommand } from './agent.ts';
import { applyCommand } from './apply.ts';
import { imagesCommand } from './images.ts';
import { inspectCommand } from './inspect.ts';
import { installCommand } from './install.ts';
import { listCommand } from './list.ts';
import { loadCommand } from './load.ts';
import { logsCommand } from './logs.ts';
import { mountCommand, umountCommand } from './mount.ts';
import { pruneCommand } from './prune.ts';
import { pullCommand } from './pull.ts';
import { readyCheckCommand } from './ready-check.ts';
import { rmiCommand } from './rmi.ts';
import { rollbackCommand } from './rollback.ts';
import { saveCommand } from './save.ts';
import { signCommand } from './sign.ts';
import { statusCommand } from './status.ts';
import { trustCommand } from './trust.ts';
import { uninstallCommand } from './uninstall.ts';
import { updateCommand } from './update.ts';
import { verifyCommand } from './verify.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export async function main(argv: string[]): Promise<void> {
  await globalOptions(yargs(argv))
    .scriptName('berth')
    // --registries.d is a name, not a path into an object; --set A=1 --set B=2 IMAGE:
    // each repeatable option takes one value, so IMAGE stays positional.
    .parserConfiguration({ 'dot-notation': false, 'greedy-arrays': false })
    .usage('berth: system containers for systemd hosts\n\nUsage: $0 <command> [options]')
    .command(installCommand)
    .command(updateCommand)
    .command(applyCommand)
    .command(rollbackCommand)
    .command(uninstallCommand)
    .command(listCommand)
    .command(statusCommand)
    .command(logsCommand)
    .command(pullCommand)
    .command(saveCommand)
    .command(loadCommand)
    .command(imagesCommand)
    .command(inspectCommand)
    .command(rmiCommand)
    .command(pruneCommand)
    .command(verifyCommand)
    .command(mountCommand)
    .command(umountCommand)
    .command(signCommand)
    .command(trustCommand)
    .command(agentCommand)
    .command(readyCheckCommand)
    .demandCommand(1, 'name a command (berth --help lists them)')
    .strict()
    .version(version)
    .help()
    .alias('h', 'help')
    .epilog('Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 unreachable, 5 integrity,\n6 conflict, 7 start failed, 8 untrusted, 9 host not ready (see README.md).')
    .wrap(Math.min(100, process.stdout.columns || 100))
    .fail((message, error, y) => {
      if (error) throw error;
      process.stderr.write(`berth: error: ${message} (see berth --help)\n`);
      void y;
      process.exit(ExitCode.usage);
    })
    .parseAsync();
}

await main(hideBin(process.argv));
