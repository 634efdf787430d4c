/**
 * Files to remove if berth is interrupted (Ctrl-C, SIGTERM, SIGHUP) while it
 * writes them: a half-written `save -o FILE.tmp-PID` must not stay behind.
 * The handlers exist only while something is registered; after cleaning up,
 * the signal is raised again, so berth still dies of it (exit 130 in a shell).
 */
import { unlinkSync } from 'node:fs';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const files = new Set<string>();

function onSignal(signal: NodeJS.Signals): void {
  for (const f of files) {
    try {
      unlinkSync(f);
    } catch {
      // already gone
    }
  }
  files.clear();
  for (const s of SIGNALS) process.removeListener(s, onSignal);
  process.kill(process.pid, signal);
}

/** Remove `file` if a signal ends berth before the returned function is called. */
export function removeOnInterrupt(file: string): () => void {
  if (files.size === 0) for (const s of SIGNALS) process.on(s, onSignal);
  files.add(file);
  return () => {
    files.delete(file);
    if (files.size === 0) for (const s of SIGNALS) process.removeListener(s, onSignal);
  };
}
