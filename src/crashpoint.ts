/**
 * Crash injection for the crash tests (test/crash/): BERTH_CRASH_AT=NAME
 * kills berth with SIGKILL the first time it reaches crash point NAME, and
 * NAME#N the Nth time. Nothing else sets it; unset, a crash point costs one
 * comparison. SIGKILL, not an exception: no finally, no undo, no flush runs,
 * as in a power cut (minus the page cache, which docs/durability.md covers).
 */

/** Every crash point, in the order an operation reaches them. */
export const CRASH_POINTS = [
  // pull, load (the store and ops/layer-pipeline.ts)
  'store.layer-objects', // a layer's objects are in place, its record is not
  'pipeline.layers-stored', // every layer record written, no intent, no image record
  'pipeline.image-stored', // one image record written (NAME#N: the Nth), no reference
  'pipeline.reference-set', // one reference set (NAME#N: the Nth), intent not yet removed
  // publish onto a share (ops/share-publish.ts; the pull's points above come first)
  'publish.checked-out', // the rootfs is checked out under SHARE/.staging, no files beside it
  'publish.staged', // the staged image is complete, not fsynced, not renamed
  'publish.renamed', // images/ALG-HEX exists, no decision, signature or ref
  'publish.signed', // the approval signature is written, the decision is not
  'publish.decided', // the decision is written, the ref is not
  'publish.ref-set', // the ref names the new digest
  // save (ops/bundle.ts)
  'save.blob-written', // one blob into FILE.tmp-PID (NAME#N: the Nth)
  'save.written', // FILE.tmp-PID complete and fsynced, not renamed to FILE
  // install, update, rollback (ops/deployment.ts, ops/switch.ts)
  'deploy.intent-written', // the write-ahead intent is durable, nothing else changed
  'deploy.staged', // staging directory complete, not renamed into a slot
  'deploy.committed', // slot renamed into place, nothing on the host yet
  'deploy.hostfs-file', // one host file created (NAME#N: the Nth)
  'deploy.hostfs-done', // host files created, not yet recorded in info.json
  'deploy.info-written', // info.json rewritten with the host files
  'deploy.tmpfiles-written', // /etc/tmpfiles.d/NAME.conf written, not applied
  'deploy.tmpfiles-applied', // systemd-tmpfiles --create ran
  'deploy.symlink', // NAME points at the new slot, the unit file is the old one
  'deploy.unit-written', // the unit file replaced, systemd not reloaded
  'install.reloaded', // daemon-reload done, unit not enabled
  'install.enabled', // unit enabled, not started
  'install.started', // unit started, intent not yet removed
  'switch.deactivated', // the old slot's tmpfiles and host files removed
  'switch.reloaded', // daemon-reload after the new slot's files are in place
  'switch.restarted', // the unit restarted from the new slot, not yet proven
  'switch.proven', // the new slot proved itself, intent not yet removed
  // uninstall
  'uninstall.intent-written',
  'uninstall.unit-removed', // unit stopped, disabled and deleted
  'uninstall.files-removed', // tmpfiles and host files removed
  'uninstall.symlink-removed', // NAME gone, slots still there
  'uninstall.slot-removed', // one slot deleted (NAME#N: the Nth)
  // apply
  'apply.entry-done', // one plan entry applied (NAME#N: after the Nth)
  // stack updates (apply, update --all: ops/stack.ts)
  'stack.intent-written', // the stack's record is durable, nothing staged
  'stack.staged', // every member committed into its other slot, nothing live changed
  'stack.switched', // one member switched and proven (NAME#N: the Nth)
  'stack.finished', // every member switched, stopped dependents started, record not yet removed
] as const;

export type CrashPoint = (typeof CRASH_POINTS)[number];

const wanted = parse(process.env['BERTH_CRASH_AT']);
let reached = 0;

function parse(spec: string | undefined): { name: string; nth: number } | undefined {
  if (spec === undefined || spec === '') return undefined;
  const m = /^([a-z.-]+)(?:#(\d+))?$/.exec(spec);
  if (!m || !(CRASH_POINTS as readonly string[]).includes(m[1]!)) {
    process.stderr.write(`berth: BERTH_CRASH_AT=${spec} names no crash point; ignored\n`);
    return undefined;
  }
  return { name: m[1]!, nth: m[2] === undefined ? 1 : Math.max(1, Number(m[2])) };
}

/** Die here, by SIGKILL, when BERTH_CRASH_AT names this point (and this is its Nth time). */
export function crashPoint(name: CrashPoint): void {
  if (wanted === undefined || wanted.name !== name) return;
  if (++reached < wanted.nth) return;
  process.kill(process.pid, 'SIGKILL');
}
