/** Poll `probe` until it yields a value (not undefined, not ''), or fail after `timeoutMs` with its last error. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await probe();
      if (v !== undefined && v !== '') return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting (${String(last)})`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
