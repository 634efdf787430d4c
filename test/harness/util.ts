/** Small helpers shared by the e2e harness modules. */

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
