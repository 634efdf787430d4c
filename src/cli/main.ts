/**
 * berth's command line. Each command lives in its own file and imports its
 * operation only when it runs, so `berth --help` loads yargs and little else.
 */
import { createRequire } from 'node:module';
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ExitCode } from '../errors.ts';
import { closest } from '../did-you-mean.ts';
import { globalOptions, PARSER_CONFIGURATION } from './common.ts';
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
  const commands = [installCommand, updateCommand, applyCommand, rollbackCommand, uninstallCommand, listCommand, statusCommand, logsCommand, pullCommand, saveCommand, loadCommand, imagesCommand, inspectCommand, rmiCommand, pruneCommand, verifyCommand, mountCommand, umountCommand, signCommand, trustCommand, agentCommand, readyCheckCommand];
  const commandNames = commands.flatMap((c) => [String(c.command).split(' ')[0]!, ...[c.aliases ?? []].flat()]);
  let y = globalOptions(yargs(argv))
    .scriptName('berth')
    .parserConfiguration(PARSER_CONFIGURATION)
    .usage('berth: system containers for systemd hosts\n\nUsage: $0 <command> [options]');
  for (const c of commands) y = y.command(c as never);
  try {
    await y
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
      .epilog('Exit codes: 0 ok, 1 failure, 2 usage, 3 not found, 4 unreachable, 5 integrity,\n6 conflict, 7 start failed, 8 untrusted, 9 host not ready (see README.md).')
      .wrap(Math.min(100, process.stdout.columns || 100))
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
      .parseAsync();
  } catch (e) {
    process.exitCode = reportError(e, false);
  }
}

await main(hideBin(process.argv));
