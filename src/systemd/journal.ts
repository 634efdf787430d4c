/** The journal's tail of a unit, for failure reports. */
import { execFile } from 'node:child_process';

/** Last `lines` messages of `unit`; never throws (a missing journalctl gives []). */
export function journalTail(unit: string, lines = 15): Promise<string[]> {
  return new Promise((resolve) => {
    execFile(
      'journalctl',
      ['--no-pager', '--quiet', '-o', 'short-monotonic', '-n', String(lines), '-u', unit],
      { timeout: 5000, maxBuffer: 1024 * 1024 },
      (err, stdout) => {
        if (err && !stdout) return resolve([]);
        resolve(stdout.split('\n').filter((l) => l.trim() !== ''));
      },
    );
  });
}
