/**
 * berth's commands, in the order `berth --help` lists them, and the texts
 * around them: the one definition the CLI (main.ts), the manual pages
 * (packaging/gen-man.mjs) and the completion are built from. No side effects:
 * importing it loads the command modules, which import their operations only
 * when they run.
 */
import type { CommandModule } from 'yargs';
import { ExitCode } from '../errors.ts';
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
import { publishCommand } from './publish.ts';
import { pullCommand } from './pull.ts';
import { readyCheckCommand } from './ready-check.ts';
import { rmiCommand } from './rmi.ts';
import { rollbackCommand } from './rollback.ts';
import { saveCommand } from './save.ts';
import { scanCommand } from './scan.ts';
import { signCommand } from './sign.ts';
import { statusCommand } from './status.ts';
import { trustCommand } from './trust.ts';
import { uninstallCommand } from './uninstall.ts';
import { updateCommand } from './update.ts';
import { verifyCommand } from './verify.ts';

export { globalOptions } from './common.ts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export const commands: CommandModule<any, any>[] = [
  installCommand,
  updateCommand,
  applyCommand,
  rollbackCommand,
  uninstallCommand,
  listCommand,
  statusCommand,
  logsCommand,
  pullCommand,
  saveCommand,
  loadCommand,
  imagesCommand,
  inspectCommand,
  rmiCommand,
  pruneCommand,
  verifyCommand,
  scanCommand,
  mountCommand,
  umountCommand,
  signCommand,
  trustCommand,
  publishCommand,
  agentCommand,
  readyCheckCommand,
];

export const summary = 'system containers for systemd hosts';

/** Exit statuses (src/errors.ts): the word help shows, and what the manual says. */
export const exitCodes: [number, string, string][] = [
  [ExitCode.ok, 'ok', 'Success.'],
  [ExitCode.failure, 'failure', 'An unexpected failure (a bug in berth, or an error it does not classify).'],
  [ExitCode.usage, 'usage', 'A bad command line, reference, name or plan.'],
  [ExitCode.notFound, 'not found', 'The image, tag or container does not exist.'],
  [ExitCode.unreachable, 'unreachable', 'The registry (or another remote) is down, unreachable or too slow (see BERTH_MIN_RATE).'],
  [ExitCode.integrity, 'integrity', 'A digest does not match, or image data is malformed or hostile.'],
  [ExitCode.conflict, 'conflict', 'The name is already installed, or another berth holds the lock (see --lock-timeout).'],
  [ExitCode.startFailed, 'start failed', 'systemd could not start or stop the unit, or its readiness probe did not pass.'],
  [ExitCode.untrusted, 'untrusted', 'The trust policy (or registries.conf) rejects the image.'],
  [ExitCode.host, 'host not ready', 'Not root, no OCI runtime, or no system bus.'],
  [ExitCode.blocked, 'blocked', 'berth scan: the scan policy blocks the image, or the scan could not be completed (a broken advisory database, a failed hook, an unreadable package database).'],
];

export const epilog = `Exit codes: ${exitCodes.map(([n, w]) => `${n} ${w}`).join(', ')} (see berth(8)).`;
