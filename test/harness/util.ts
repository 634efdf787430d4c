/** Small helpers shared by the harness modules and tests. */
import { spawnSync } from 'node:child_process';

/** Resolves true when `p` settles, false after `ms`; the timer is cleared either way (no dangling timer keeps the test process alive). */
export function withTimeout(p: Promise<unknown>, ms: number): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve(true);
    };
    p.then(done, done);
  });
}

/** Synchronous sleep, for process 'exit' handlers only. */
export function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

/** Whether `command --version` runs here: for tests that skip without a host tool. */
export function hasCommand(command: string): boolean {
  return spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
}
