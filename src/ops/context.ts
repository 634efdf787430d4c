/** What every operation gets: where things are, and how to talk to the user. */
import { Paths } from '../deploy/paths.ts';

export interface Reporter {
  /** Progress for people (stderr); silent with --quiet or --json. */
  step(message: string): void;
  warn(message: string): void;
  /**
   * A status line for one task (a layer) that changes over time: a terminal
   * redraws it in place; `final` marks its last text. Optional: reporters
   * without it get only step() lines.
   */
  progress?(id: string, text: string, final?: boolean, bytes?: { done: number; total: number }): void;
}

export interface OpContext {
  paths: Paths;
  report: Reporter;
  /** How long to wait for the state lock; undefined waits forever. */
  lockTimeoutMs?: number;
}

export const silentReporter: Reporter = { step() {}, warn() {} };

export function defaultContext(root: string | undefined, report: Reporter, lockTimeoutMs?: number): OpContext {
  return { paths: new Paths(root), report, ...(lockTimeoutMs === undefined ? {} : { lockTimeoutMs }) };
}
