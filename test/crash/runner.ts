/**
 * Crash trials: berth killed by SIGKILL in the middle of load, pull, save,
 * install, update, rollback, uninstall and apply, at named crash points
 * (BERTH_CRASH_AT, src/crashpoint.ts) and at random times (`timeout -s KILL`
 * around the berth process), all in one booted test host.
 *
 * Each trial:
 *   1. sets up the operation's "before" state and snapshots it;
 *   2. runs the operation, killed;
 *   3. runs `berth verify` (which recovers, as root) and requires exit 0;
 *   4. snapshots again ("mid");
 *   5. re-runs the same command, unkilled, and requires exit 0; snapshots ("after")
 *      (an install that had completed before the kill is refused again with
 *      exit 6, as it should be: its "after" is the one an unkilled install left);
 *   6. requires mid == before or mid == after, container by container (an
 *      apply is a sequence of container operations: each container is before
 *      or after). A rollback re-run from "after" rolls back again, so there
 *      mid == after means the re-run brought back "before".
 * A snapshot is `berth list --json` and `berth images --json` (digests and
 * references: a half-pulled image would show), and per container: the NAME
 * symlink, the slots' image digests, the unit file, the tmpfiles file, the
 * host files (by hash) and the unit's enabled and active states; for save,
 * the output file by hash (absent, or the whole bundle: never a partial one
 * under its name), and after the re-run no FILE.tmp-PID may be left.
 * For publish, what a host reading the share sees (crash/share.ts): the
 * tag's ref naming a complete image (v1 before, v2 after), its signature,
 * and no incomplete image directory; taken right after the kill, before
 * anything runs again (hosts read the share at any moment); after the re-run
 * nothing may be left in the share's .staging/.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs/promises';
import path from 'node:path';
import { CRASH_POINTS, type CrashPoint } from '../../src/crashpoint.ts';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { BERTH, BerthEnv } from '../harness/berth-env.ts';
import { unusedPort } from '../harness/registry.ts';
import type { ExecResult } from '../harness/test-host.ts';
import { GpgHome } from '../fixtures/gpg.ts';
import { crashAppImage, crashHostFiles, crashLoadImage, crashPullImage } from './images.ts';
import { shareView } from './share.ts';

export type CrashOp = 'load' | 'pull' | 'save' | 'install' | 'update' | 'rollback' | 'uninstall' | 'apply' | 'stack' | 'publish';
/** In this order a crash point is first tried through the first operation that passes it: load before pull, as its two images reach both recovery directions. */
export const CRASH_OPS: readonly CrashOp[] = ['load', 'pull', 'save', 'install', 'update', 'rollback', 'uninstall', 'apply', 'stack', 'publish'];

/** The crash points each operation passes, in order (NAME#N: the Nth time). */
const POINTS: Record<CrashOp, string[]> = {
  // A bundle of two images: image-stored#1 leaves one record of two (undone), reference-set#1 one name of two (finished).
  load: [
    'store.layer-objects', 'store.layer-objects#3', 'pipeline.layers-stored', 'pipeline.image-stored', 'pipeline.image-stored#2',
    'pipeline.reference-set', 'pipeline.reference-set#2',
  ],
  pull: ['store.layer-objects', 'store.layer-objects#3', 'pipeline.layers-stored', 'pipeline.image-stored', 'pipeline.reference-set'],
  save: ['save.blob-written', 'save.blob-written#4', 'save.written'],
  install: [
    'deploy.intent-written', 'deploy.staged', 'deploy.committed', 'deploy.hostfs-file', 'deploy.hostfs-file#2', 'deploy.hostfs-done',
    'deploy.info-written', 'deploy.tmpfiles-written', 'deploy.tmpfiles-applied', 'deploy.symlink', 'deploy.unit-written',
    'install.reloaded', 'install.enabled', 'install.started',
  ],
  update: [
    'pipeline.image-stored', 'deploy.intent-written', 'deploy.staged', 'deploy.committed', 'switch.deactivated', 'deploy.hostfs-file', 'deploy.hostfs-done',
    'deploy.info-written', 'deploy.tmpfiles-written', 'deploy.tmpfiles-applied', 'deploy.symlink', 'deploy.unit-written',
    'switch.reloaded', 'switch.restarted', 'switch.proven',
  ],
  rollback: ['deploy.intent-written', 'switch.deactivated', 'deploy.hostfs-file#2', 'deploy.info-written', 'deploy.symlink', 'deploy.unit-written', 'switch.reloaded', 'switch.restarted', 'switch.proven'],
  uninstall: ['uninstall.intent-written', 'uninstall.unit-removed', 'uninstall.files-removed', 'uninstall.symlink-removed', 'uninstall.slot-removed'],
  // Two installs: every install point, in the first container or the second (#2), and after each entry.
  apply: [
    'deploy.intent-written', 'deploy.staged#2', 'deploy.committed', 'deploy.hostfs-file#3', 'deploy.hostfs-done#2', 'deploy.info-written',
    'deploy.tmpfiles-written#2', 'deploy.tmpfiles-applied', 'deploy.symlink#2', 'deploy.unit-written', 'install.reloaded#2', 'install.enabled',
    'install.started#2', 'apply.entry-done', 'deploy.committed#2', 'install.enabled#2', 'apply.entry-done#2',
  ],
  // An apply that updates app1 and app2 from :a to :b as one stack.
  stack: ['stack.intent-written', 'deploy.committed#2', 'stack.staged', 'switch.restarted', 'stack.switched', 'switch.deactivated#2', 'stack.switched#2', 'stack.finished'],
  // berth publish add of crash/pub:latest, moved from v1 (published) to v2, onto a share (a plain directory).
  publish: [
    'store.layer-objects', 'pipeline.layers-stored', 'pipeline.image-stored', 'pipeline.reference-set', 'publish.checked-out', 'publish.staged',
    'publish.renamed', 'publish.signed', 'publish.decided', 'publish.ref-set',
  ],
};

export interface CrashOptions {
  trials: number;
  /** Only these operations (default all). */
  ops?: readonly CrashOp[];
  maxMinutes: number;
  /** Every how many trials of an operation one is a random-time kill (the rest go through its crash points). */
  randomEvery?: number;
  log?: (line: string) => void;
}

export interface TrialResult {
  n: number;
  op: CrashOp;
  /** The crash point, or "random Xs". */
  kill: string;
  killed: boolean;
  /** before | after (which state the kill left, after recovery). */
  landed?: 'before' | 'after';
  failure?: string;
  seconds: number;
}

export interface CrashSummary {
  trials: TrialResult[];
  ops: readonly CrashOp[];
  perOp: Partial<Record<CrashOp, number>>;
  pointsCovered: string[];
  /** The crash points the operations tried pass. */
  pointsPassed: string[];
  randomKills: number;
  failures: TrialResult[];
  stoppedEarly: boolean;
  line: string;
}

type Snapshot = Record<string, string>;

interface Scenario {
  names: string[];
  /** A view of state outside berth's root, snapshotted with the rest (the share of publish). */
  view?: () => Promise<Snapshot>;
  /** Files outside berth's root the operation writes, snapshotted by hash. */
  files?: string[];
  /** Bring the host to the operation's "before" state. */
  setup(): Promise<void>;
  args: string[];
  /** Checks after the re-run, beyond before/after. */
  check?(): Promise<void>;
}

export async function runCrashTrials(options: CrashOptions): Promise<CrashSummary> {
  const log = options.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  const started = Date.now();
  const env = await BerthEnv.start('berth-crash');
  try {
    return await new Trials(env, options, log).run(started);
  } finally {
    await env.stop();
  }
}

class Trials {
  private readonly repo: string;
  private ports: Record<string, number> = {};
  private readonly planFile: string;
  /** What the load trials load (written by berth save in prepare()). */
  private readonly bundleFile: string;
  /** What the save trials write. */
  private readonly saveFile: string;
  private readonly opDurations = new Map<CrashOp, number>();
  /** An install's "after" as an unkilled install left it (deterministic: same image, values and ports). */
  private readonly learned = new Map<CrashOp, Snapshot>();

  constructor(
    private readonly env: BerthEnv,
    private readonly options: CrashOptions,
    private readonly log: (line: string) => void,
  ) {
    this.repo = `docker://${env.registry.host}/crash`;
    this.planFile = path.join(env.work, 'plan.yaml');
    this.bundleFile = path.join(env.work, 'bundle.tar');
    this.saveFile = path.join(env.work, 'saved', 'bundle.tar');
  }

  private get ops(): readonly CrashOp[] {
    return this.options.ops ?? CRASH_OPS;
  }

  private ref(image: string): string {
    return `${this.repo}/${image}`;
  }

  /** berth inside the test host; `crashAt` sets BERTH_CRASH_AT, `killAfter` SIGKILLs it after that many seconds. */
  private berth(args: string[], opts: { crashAt?: string; killAfter?: number } = {}): Promise<ExecResult> {
    const [command, ...rest] = args;
    const policy = ['install', 'update', 'pull', 'apply', 'load', 'save'].includes(command!) ? ['--policy', this.env.policy, '--tls-verify=false'] : [];
    const argv = [BERTH, '--root', this.env.root, command!, ...policy, ...rest];
    const envVars: Record<string, string> = opts.crashAt === undefined ? {} : { BERTH_CRASH_AT: opts.crashAt };
    if (opts.killAfter !== undefined) {
      return this.env.host.exec('timeout', ['-s', 'KILL', opts.killAfter.toFixed(2), process.execPath, ...argv], { env: envVars, timeoutMs: 300_000 });
    }
    return this.env.host.exec(process.execPath, argv, { env: envVars, timeoutMs: 300_000 });
  }

  private async must(args: string[], why: string): Promise<ExecResult> {
    const r = await this.berth(args);
    if (r.code !== 0) throw new Error(`${why}: berth ${args.join(' ')} exited ${r.code}: ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
    return r;
  }

  private async prepare(): Promise<void> {
    const { env } = this;
    for (const n of ['app', 'app1', 'app2']) this.ports[n] = await unusedPort();
    await pushImage(await buildImage(env.layout, 'a', crashAppImage('A')), env.registry.host, 'crash/app', 'a');
    await pushImage(await buildImage(env.layout, 'b', crashAppImage('B')), env.registry.host, 'crash/app', 'b');
    await pushImage(await buildImage(env.layout, 'pull', crashPullImage()), env.registry.host, 'crash/pull', 'latest');
    await this.must(['pull', this.ref('app:a')], 'prepare');
    await this.must(['pull', this.ref('app:b')], 'prepare');
    for (const tag of ['one', 'two']) await pushImage(await buildImage(env.layout, `load-${tag}`, crashLoadImage()), env.registry.host, 'crash/load', tag);
    await this.must(['save', ...this.loadRefs(), '-o', this.bundleFile], 'prepare');
    await fs.mkdir(path.dirname(this.saveFile), { recursive: true });
    const entry = (n: string) => `  ${n}:\n    image: ${this.ref('app:a')}\n    set: { PORT: "${this.ports[n]}", RECEIVER: "${n}" }\n`;
    await fs.writeFile(this.planFile, `version: 1\ndefaults:\n  tlsVerify: false\ncontainers:\n${entry('app1')}${entry('app2')}`);
    await fs.writeFile(this.planFile.replace('.yaml', '-b.yaml'), (await fs.readFile(this.planFile, 'utf8')).replaceAll(this.ref('app:a'), this.ref('app:b')));
    if (this.ops.includes('publish')) {
      const gpg = await GpgHome.create();
      try {
        const fpr = await gpg.generateKey('crash publisher', 'publisher@berth.example', 'ed25519');
        await fs.writeFile(this.publishKey, await gpg.exportSecret(fpr));
      } finally {
        await gpg.cleanup();
      }
      // v1 and v2 of crash/pub: layers of their own, big enough for a random kill to land mid-import.
      await pushImage(await buildImage(env.layout, 'pub-v1', crashPullImage()), env.registry.host, 'crash/pub', 'v1');
      await pushImage(await buildImage(env.layout, 'pub-v2', crashPullImage()), env.registry.host, 'crash/pub', 'v2');
    }
  }

  private get share(): string {
    return path.join(this.env.work, 'share');
  }

  private get publishKey(): string {
    return path.join(this.env.work, 'publisher.key');
  }

  /** The share with crash/pub:latest published at v1, and the registry's :latest moved to v2. */
  private async publishedV1(): Promise<void> {
    const { env } = this;
    await fs.rm(this.share, { recursive: true, force: true });
    const skopeo = (from: string) =>
      env.host.exec('skopeo', ['copy', '--insecure-policy', '--src-tls-verify=false', '--dest-tls-verify=false', `docker://${env.registry.host}/crash/pub:${from}`, `docker://${env.registry.host}/crash/pub:latest`]);
    const c1 = await skopeo('v1');
    if (c1.code !== 0) throw new Error(`setup: skopeo copy exited ${c1.code}: ${c1.stderr.trim()}`);
    await this.must(this.publishArgs(), 'setup');
    const c2 = await skopeo('v2');
    if (c2.code !== 0) throw new Error(`setup: skopeo copy exited ${c2.code}: ${c2.stderr.trim()}`);
  }

  private publishArgs(): string[] {
    return ['publish', 'add', '--share', this.share, '--key', this.publishKey, '--policy', this.env.policy, '--tls-verify=false', this.ref('pub:latest')];
  }

  private loadRefs(): string[] {
    return [this.ref('load:one'), this.ref('load:two')];
  }

  /** The bundle's images out of the store, and whatever only they used. */
  private async removeLoadImages(): Promise<void> {
    for (const ref of this.loadRefs()) {
      const r = await this.berth(['rmi', ref]);
      if (r.code !== 0 && r.code !== 3) throw new Error(`setup: rmi exited ${r.code}: ${r.stderr.trim()}`);
    }
    await this.must(['prune'], 'setup');
  }

  private async installedSlot(name: string): Promise<{ slot: 0 | 1; digests: (string | undefined)[] } | undefined> {
    const target = await fs.readlink(path.join(this.env.root, 'containers', name)).catch(() => undefined);
    if (target === undefined) return undefined;
    const digest = async (s: number) =>
      ((await fs.readFile(path.join(this.env.root, 'containers', `${name}.${s}`, 'info.json'), 'utf8').then(JSON.parse).catch(() => undefined)) as { image?: string } | undefined)?.image;
    return { slot: target.endsWith('.1') ? 1 : 0, digests: [await digest(0), await digest(1)] };
  }

  private async uninstall(...names: string[]): Promise<void> {
    for (const n of names) if (await this.installedSlot(n)) await this.must(['uninstall', n], 'setup');
  }

  private install(version: 'a' | 'b'): Promise<ExecResult> {
    return this.must(['install', '--name', 'app', '--set', `PORT=${this.ports['app']}`, this.ref(`app:${version}`)], 'setup');
  }

  /** app installed from :a, slot 0 only. */
  private async freshA(): Promise<void> {
    await this.uninstall('app1', 'app2');
    const s = await this.installedSlot('app');
    if (s && s.slot === 0 && s.digests[0] === this.ref('app:a') && s.digests[1] === undefined) return;
    await this.uninstall('app');
    await this.install('a');
  }

  private scenario(op: CrashOp): Scenario {
    const update = ['update', 'app', '--rebase', this.ref('app:b'), '--settle', '0.5'];
    switch (op) {
      case 'pull':
        return {
          names: [],
          args: ['pull', this.ref('pull:latest')],
          setup: async () => {
            const r = await this.berth(['rmi', this.ref('pull:latest')]);
            if (r.code !== 0 && r.code !== 3) throw new Error(`setup: rmi exited ${r.code}: ${r.stderr.trim()}`);
            await this.must(['prune'], 'setup');
          },
        };
      case 'load':
        return { names: [], args: ['load', this.bundleFile], setup: () => this.removeLoadImages() };
      case 'save':
        return {
          names: [],
          files: [this.saveFile],
          args: ['save', ...this.loadRefs(), '-o', this.saveFile],
          setup: async () => {
            // A load trial may have left them half-way or removed them: save reads them from the store.
            for (const ref of this.loadRefs()) await this.must(['pull', ref], 'setup');
            await fs.rm(this.saveFile, { force: true });
          },
          check: async () => {
            const left = (await fs.readdir(path.dirname(this.saveFile))).filter((f) => f !== path.basename(this.saveFile));
            if (left.length > 0) throw new Error(`the re-run of berth save left ${left.join(', ')} next to its output`);
          },
        };
      case 'install':
        return {
          names: ['app'],
          args: ['install', '--name', 'app', '--set', `PORT=${this.ports['app']}`, this.ref('app:a')],
          setup: async () => this.uninstall('app', 'app1', 'app2'),
        };
      case 'update':
        return { names: ['app'], args: update, setup: () => this.freshA() };
      case 'rollback':
        return {
          names: ['app'],
          args: ['rollback', 'app'],
          setup: async () => {
            await this.uninstall('app1', 'app2');
            const s = await this.installedSlot('app');
            const [a, b] = [this.ref('app:a'), this.ref('app:b')];
            if (s && s.digests[0] === a && s.digests[1] === b) {
              if (s.slot === 0) await this.must(['rollback', 'app'], 'setup');
              return;
            }
            await this.freshA();
            await this.must(update, 'setup');
          },
        };
      case 'uninstall':
        return { names: ['app'], args: ['uninstall', 'app'], setup: () => this.freshA() };
      case 'apply':
        return { names: ['app1', 'app2'], args: ['apply', this.planFile, '--settle', '0.5'], setup: async () => this.uninstall('app', 'app1', 'app2') };
      case 'publish':
        return {
          names: [],
          view: () => shareView(this.share, `${this.env.registry.host}/crash/pub/latest`, 'crash/pub'),
          args: this.publishArgs(),
          setup: () => this.publishedV1(),
          check: async () => {
            const left = await fs.readdir(path.join(this.share, '.staging'));
            if (left.length > 0) throw new Error(`the re-run of berth publish left ${left.join(', ')} in the share's .staging`);
          },
        };
      case 'stack':
        return {
          names: ['app1', 'app2'],
          args: ['apply', this.planFile.replace('.yaml', '-b.yaml'), '--settle', '0.5'],
          // Both freshly installed on :a, one slot each: a stack whose commit began has
          // overwritten the older rollback slot, so undoing it cannot bring that slot back
          // (the known limit of update, docs/durability.md); a fresh install has none to lose.
          setup: async () => {
            await this.uninstall('app', 'app1', 'app2');
            await this.must(['apply', this.planFile, '--settle', '0.5'], 'setup');
          },
        };
    }
  }

  private async snapshot(names: string[], files: string[] = [], view?: () => Promise<Snapshot>): Promise<Snapshot> {
    const snap: Snapshot = view === undefined ? {} : await view();
    const images = JSON.parse((await this.must(['images', '--json'], 'snapshot')).stdout) as { digest: string; references: string[] }[];
    snap['images'] = images.map((i) => `${i.digest} ${[...i.references].sort().join(',')}`).sort().join('\n');
    for (const f of files) {
      const data = await fs.readFile(f).catch(() => undefined);
      snap[f] = data === undefined ? 'absent' : `sha256:${createHash('sha256').update(data).digest('hex')} ${data.length} bytes`;
    }
    if (names.length === 0) return snap;
    const list = JSON.parse((await this.must(['list', '--json'], 'snapshot')).stdout) as { name: string; manifestDigest: string; slot: number; activeState: string }[];
    const root = this.env.root;
    const script = names
      .map(
        (n) => `echo "link $(readlink ${root}/containers/${n})"
for s in 0 1; do [ -e ${root}/containers/${n}.$s ] && echo "slot $s $(grep -o '"manifestDigest": *"[^"]*"' ${root}/containers/${n}.$s/info.json)"; done
for f in /etc/systemd/system/${n}.service /etc/tmpfiles.d/${n}.conf ${crashHostFiles(n).join(' ')}; do [ -e "$f" ] && echo "file $f $(sha256sum < "$f" | cut -c1-16)"; done
echo "unit $(systemctl show -p UnitFileState --value ${n}.service) $(systemctl show -p ActiveState --value ${n}.service)"
echo "@@"`,
      )
      .join('\n');
    const r = await this.env.host.exec('sh', ['-c', script]);
    const parts = r.stdout.split('@@\n');
    for (const [i, n] of names.entries()) {
      const l = list.find((c) => c.name === n);
      snap[n] = `${l ? `list ${l.manifestDigest} slot ${l.slot} ${l.activeState}` : 'list -'}\n${parts[i] ?? ''}`.trim();
    }
    return snap;
  }

  private schedule(): { op: CrashOp; kill: string }[] {
    const ops = this.ops;
    const out: { op: CrashOp; kill: string }[] = [];
    // First every crash point once, through the first operation that passes it.
    const covered = new Set<string>();
    for (const point of CRASH_POINTS) {
      const op = ops.find((o) => POINTS[o].some((p) => p.split('#')[0] === point));
      if (op === undefined) continue;
      out.push({ op, kill: POINTS[op].find((p) => p.split('#')[0] === point)! });
      covered.add(point);
    }
    // Then round robin over the operations: their crash points in turn, every Nth a random kill.
    const every = this.options.randomEvery ?? 3;
    const next: Record<string, number> = {};
    for (let i = 0; out.length < this.options.trials; i++) {
      const op = ops[i % ops.length]!;
      const k = (next[op] = (next[op] ?? 0) + 1);
      out.push({ op, kill: k % every === 0 ? 'random' : POINTS[op][(k - 1 - Math.floor(k / every)) % POINTS[op].length]! });
    }
    return out.slice(0, this.options.trials);
  }

  async run(started: number): Promise<CrashSummary> {
    await this.prepare();
    const results: TrialResult[] = [];
    const deadline = started + this.options.maxMinutes * 60_000;
    const plan = this.schedule();
    let stoppedEarly = false;
    for (const [i, t] of plan.entries()) {
      if (Date.now() > deadline) {
        stoppedEarly = true;
        break;
      }
      const r = await this.trial(i + 1, t.op, t.kill);
      results.push(r);
      this.log(
        `[${i + 1}/${plan.length}] ${r.op} ${r.kill}: ${r.killed ? `killed, recovered to ${r.landed ?? '?'}` : 'not killed (finished first)'}${r.failure ? ` FAILED: ${r.failure}` : ', ok'} (${r.seconds.toFixed(1)}s)`,
      );
    }
    await this.uninstall('app', 'app1', 'app2').catch((e: unknown) => this.log(`cleanup: ${(e as Error).message}`));
    return summarise(this.ops, results, stoppedEarly);
  }

  private async trial(n: number, op: CrashOp, kill: string): Promise<TrialResult> {
    const t0 = Date.now();
    const result: TrialResult = { n, op, kill, killed: false, seconds: 0 };
    try {
      const sc = this.scenario(op);
      await sc.setup();
      const before = await this.snapshot(sc.names, sc.files, sc.view);
      let r: ExecResult;
      if (kill === 'random') {
        // Anywhere in a normal run of this operation, mostly past berth's start-up (its first fifth).
        const span = this.opDurations.get(op) ?? 3;
        const at = span * (0.2 + 0.8 * Math.random());
        result.kill = `random ${at.toFixed(2)}s`;
        r = await this.berth(sc.args, { killAfter: at });
      } else {
        r = await this.berth(sc.args, { crashAt: kill });
      }
      result.killed = r.code === 137;
      if (!result.killed && r.code !== 0) throw new Error(`the operation failed on its own (exit ${r.code}): ${r.stderr.trim().split('\n').slice(-3).join(' | ')}`);
      // What a reader sees at the moment of the kill, before anything recovers (hosts never wait for the publisher).
      const seen = sc.view === undefined ? undefined : await sc.view();
      const v = await this.berth(['verify']);
      if (v.code !== 0) throw new Error(`berth verify exited ${v.code} after the kill: ${(v.stdout + v.stderr).trim().split('\n').filter((l) => /problem|error/.test(l)).slice(0, 4).join(' | ')}`);
      const mid = { ...(await this.snapshot(sc.names, sc.files)), ...seen };
      const rerunStart = Date.now();
      const again = await this.berth(sc.args);
      const done = op === 'install' && !sameSnapshot(mid, before);
      if (done) {
        // The install had completed: installing again is refused as it should be, and what it left is a known "after".
        if (again.code !== 6) throw new Error(`re-running berth install over a completed one exited ${again.code}, not 6: ${again.stderr.trim().split('\n').slice(-2).join(' | ')}`);
        const known = this.learned.get(op);
        if (known === undefined) throw new Error('the install completed before any unkilled install showed what "after" is');
        result.landed = compare(op, before, mid, known);
      } else {
        if (again.code !== 0) throw new Error(`re-running berth ${sc.args[0]} exited ${again.code}: ${again.stderr.trim().split('\n').slice(-3).join(' | ')}`);
        // The longest unkilled run seen (a re-run after a completed operation is a quick no-op).
        this.opDurations.set(op, Math.max(this.opDurations.get(op) ?? 0, (Date.now() - rerunStart) / 1000));
        const after = await this.snapshot(sc.names, sc.files, sc.view);
        result.landed = compare(op, before, mid, after);
        await sc.check?.();
        if (op === 'install') this.learned.set(op, after);
      }
    } catch (e) {
      result.failure = (e as Error).message;
    }
    result.seconds = (Date.now() - t0) / 1000;
    return result;
  }
}

function sameSnapshot(a: Snapshot, b: Snapshot): boolean {
  return Object.keys(a).every((k) => a[k] === b[k]);
}

/** Which of before/after `mid` is, key by key; throws naming the first key that is neither. */
function compare(op: CrashOp, before: Snapshot, mid: Snapshot, after: Snapshot): 'before' | 'after' {
  let landed: 'before' | 'after' = 'before';
  for (const key of Object.keys(before)) {
    if (mid[key] === before[key]) continue;
    // A rollback re-run from "after" rolls back again: then the re-run must have brought back "before".
    const isAfter = op === 'rollback' ? after[key] === before[key] : mid[key] === after[key];
    if (!isAfter) {
      throw new Error(`${key} is neither before nor after:\n--- before\n${before[key]}\n--- after kill and recovery\n${mid[key]}\n--- after re-run\n${after[key]}`);
    }
    landed = 'after';
  }
  return landed;
}

/** The crash points `ops` pass, in CRASH_POINTS order. */
function passedBy(ops: readonly CrashOp[]): CrashPoint[] {
  const names = new Set(ops.flatMap((o) => POINTS[o].map((p) => p.split('#')[0]!)));
  return CRASH_POINTS.filter((p) => names.has(p));
}

function summarise(ops: readonly CrashOp[], trials: TrialResult[], stoppedEarly: boolean): CrashSummary {
  const perOp = Object.fromEntries(ops.map((o) => [o, trials.filter((t) => t.op === o).length])) as Partial<Record<CrashOp, number>>;
  const points = new Set<string>();
  for (const t of trials) if (t.killed && !t.kill.startsWith('random')) points.add(t.kill.split('#')[0]!);
  const pointsPassed = passedBy(ops);
  const pointsCovered = pointsPassed.filter((p) => points.has(p));
  const randomKills = trials.filter((t) => t.killed && t.kill.startsWith('random')).length;
  const failures = trials.filter((t) => t.failure !== undefined);
  const line =
    `crash: ${trials.length} trials (${ops.map((o) => `${o} ${perOp[o]}`).join(', ')}), ` +
    `${pointsCovered.length}/${pointsPassed.length} kill points covered, ${randomKills} random kills, failures: ${failures.length}` +
    (stoppedEarly ? ' (stopped at --max-minutes)' : '');
  return { trials, ops, perOp, pointsCovered, pointsPassed, randomKills, failures, stoppedEarly, line };
}

/** The crash points the trials' operations pass that no trial killed at. */
export function uncovered(summary: CrashSummary): string[] {
  return summary.pointsPassed.filter((p) => !summary.pointsCovered.includes(p));
}
