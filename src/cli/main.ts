/**
 * berth's command line. Each command lives in its own file and imports its
 * operation only when it runs, so `berth --help` loads yargs and little else.
 */
import { createRequire } from 'node:module';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../errors.ts';
import { closest } from '../did-you-mean.ts';
import { PARSER_CONFIGURATION } from './common.ts';
import { commands, epilog, globalOptions, summary } from './commands.ts';
import { formatHelp, helpWidth } from './help.ts';

const { version } = createRequire(import.meta.url)('../../package.json') as { version: string };

/** Short options some command defines (alias: in src/cli/*), for telling an unknown option from a known one. */
const SHORT_OPTIONS = new Set(['q', 'h', 'o', 't', 'f', 'n']);

/**
 * An option the command does not know, in what was typed: yargs reads it as
 * taking the next word, and then complains about that word instead
 * ("Not enough non-option arguments"), so name the option itself.
 */
function unknownOption(argv: readonly string[], known: readonly string[]): string | undefined {
  const end = argv.indexOf('--');
  for (const word of end < 0 ? argv : argv.slice(0, end)) {
    if (word.startsWith('--') && word.length > 2) {
      const name = word.slice(2).split('=')[0]!;
      if (!known.includes(name) && !(name.startsWith('no-') && known.includes(name.slice(3)))) {
        const near = closest(name, known);
        return `unknown option --${name}${near ? ` (did you mean --${near}?)` : ''}`;
      }
    } else if (/^-[a-zA-Z]/.test(word)) {
      const bad = [...word.slice(1).split('=')[0]!].find((c) => !SHORT_OPTIONS.has(c));
      if (bad !== undefined) return `unknown option -${bad}`;
    }
  }
  return undefined;
}

/** The first word that is not an option or a global option's value: the command. */
function firstWord(argv: readonly string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const w = argv[i]!;
    if (w === '--root' || w === '--lock-timeout') i++;
    else if (!w.startsWith('-')) return w;
  }
  return undefined;
}

/** A yargs complaint as berth's one line: WHAT (HINT). */
function usageLine(message: string, argv: readonly string[], known: readonly string[], commands: readonly string[]): string {
  const unknown = unknownOption(argv, known);
  if (unknown !== undefined && /^(Not enough non-option|Unknown argument|Missing required argument|Did you mean|Too many)/.test(message)) {
    return unknown.includes('(') ? unknown : `${unknown} (see berth --help)`;
  }
  const typed = firstWord(argv);
  const near = /^Did you mean (\S+)\?$/.exec(message);
  if (near) return `unknown command ${typed ?? ''} (did you mean ${near[1]}?)`;
  const unknownCmd = /^Unknown arguments?: (\S+?)(,|$)/.exec(message);
  if (unknownCmd && typed !== undefined && typed === unknownCmd[1] && !commands.includes(typed)) return `unknown command ${typed} (berth --help lists them)`;
  return `${message.replace(/\n/g, ' ')} (see berth --help)`;
}

export async function main(argv: string[]): Promise<void> {
  const { reportError, debugging } = await import('./output.ts');
  const commandNames = commands.flatMap((c) => [String(c.command).split(' ')[0]!, ...[c.aliases ?? []].flat()]);
  try {
    await run(argv, commandNames, reportError, debugging);
  } catch (e) {
    process.exitCode = reportError(e, false);
  }
}

async function run(argv: string[], commandNames: string[], reportError: (e: unknown, json: boolean) => number, debugging: () => boolean): Promise<void> {
  await globalOptions(yargs(argv))
    .scriptName('berth')
    // common.ts says why; subcommands that set their own use the same.
    .parserConfiguration(PARSER_CONFIGURATION)
    .usage(`berth: ${summary}\n\nUsage: $0 <command> [options]`)
    .command(commands)
    .demandCommand(1, 'name a command (berth --help lists them)')
    .recommendCommands()
    .strict()
    .check((a) => {
      const t = a['lock-timeout'];
      if (t !== undefined && !(Number.isFinite(t) && t >= 0)) throw new Error('--lock-timeout: expected a number of seconds');
      return true;
    }, true)
    .version(version)
    .help()
    .alias('h', 'help')
    .epilog(epilog)
    // Unwrapped here, wrapped at word boundaries below (help.ts): yargs 17 splits words.
    .wrap(null)
    .fail((message, error, usage) => {
      if (error !== undefined && error !== null && (error as { name?: string }).name === 'BerthError') {
        process.exit(reportError(error, false));
      }
      // A .check() that threw: its message is the complaint.
      const known = Object.keys((usage as unknown as { getDescriptions(): Record<string, unknown> }).getDescriptions());
      process.stderr.write(`berth: error: ${usageLine(message ?? (error as Error | undefined)?.message ?? 'bad command line', argv, known, commandNames)}\n`);
      if (error && debugging()) process.stderr.write(`${(error as Error).stack}\n`);
      process.exit(ExitCode.usage);
    })
    // With a callback yargs hands --help (and --version) text over instead of printing it.
    .parseAsync(argv, {}, (_err, _argv, output) => {
      if (output) process.stdout.write(`${formatHelp(output, helpWidth())}\n`);
    });
}

await main(hideBin(process.argv));
