/**
 * How a unit runs berth itself (readiness probes, atomic's $ATOMIC): this
 * node and this berth's entry point, by absolute path, so that the unit
 * works from systemd's bare environment, with berth not running.
 */
import { fileURLToPath } from 'node:url';

/** bin/berth.js of this installation (src/ and dist/ are both one level below the package root). */
export const BERTH_ENTRY = fileURLToPath(new URL('../bin/berth.js', import.meta.url));

export function berthCommand(): string[] {
  return [process.execPath, BERTH_ENTRY];
}
