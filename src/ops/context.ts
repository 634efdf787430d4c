/** What every operation gets: where things are, and how to talk to the user. */
import { Paths } from '../deploy/paths.ts';

export interface Reporter {
  /** Progress for people (stderr); silent with --quiet or --json. */
  step(message: string): void;
  warn(message: string): void;
}

export interface OpContext {
  paths: Paths;
  report: Reporter;
}

export const silentReporter: Reporter = { step() {}, warn() {} };

export function defaultContext(root: string | undefined, report: Reporter): OpContext {
  return { paths: new Paths(root), report };
}
