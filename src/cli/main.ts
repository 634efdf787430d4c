/**
 * berth's command line. Each command lives in its own file and imports its
 * operation only when it runs, so `berth --help` loads yargs and little else.
 */
import { createRequire } from 'node:module';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../errors.ts';
import { commands, epilog, globalOptions, summary } from './commands.ts';
import { formatHelp, helpWidth } from './help.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

export async function main(argv: string[]): Promise<void> {
  await globalOptions(yargs(argv))
    .scriptName('berth')
    // --registries.d is a name, not a path into an object; --set A=1 --set B=2 IMAGE:
    // each repeatable option takes one value, so IMAGE stays positional.
    .parserConfiguration({ 'dot-notation': false, 'greedy-arrays': false })
    .usage(`berth: ${summary}\n\nUsage: $0 <command> [options]`)
    .command(commands)
    .demandCommand(1, 'name a command (berth --help lists them)')
    .strict()
    .version(version)
    .help()
    .alias('h', 'help')
    .epilog(epilog)
    // Unwrapped here, wrapped at word boundaries below (help.ts): yargs 17 splits words.
    .wrap(null)
    .fail((message, error, y) => {
      if (error) throw error;
      process.stderr.write(`berth: error: ${message} (see berth --help)\n`);
      void y;
      process.exit(ExitCode.usage);
    })
    // With a callback yargs hands --help (and --version) text over instead of printing it.
    .parseAsync(argv, {}, (_err, _argv, output) => {
      if (output) process.stdout.write(`${formatHelp(output, helpWidth())}\n`);
    });
}

await main(hideBin(process.argv));
