/**
 * N containers of one image, installed with berth in a real systemd test
 * host and all running at once: the disk they use (du, a hard-linked inode
 * counted once) against one extracted copy, and whether their processes
 * share one copy of the image's files in memory: every container's main
 * process maps the same (dev, inode) of /bin/busybox, counted as
 * Shared_Clean in /proc/PID/smaps, while a process started from a plain copy
 * of the same file has pages of its own. fincore, when installed, shows the
 * page cache side: a file read through one container is cached for all.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { copyFileSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { TestHost } from '../test/harness/test-host.ts';
import { berthArgv } from './berth-argv.ts';
import { berthIn, inHost, writePolicy } from './install.ts';
import { dropCaches, duBytes, output, timed, tryOutput, type Sample } from './measure.ts';
import { fileMapping, type FileMapping } from './smaps.ts';

export interface ContainersBench {
  host: TestHost;
  /** Scratch directory (made if missing), visible inside the test host (under /tmp). */
  work: string;
  berthBin: string;
  /** docker://… reference of an image with /bin/busybox and a command that keeps running. */
  ref: string;
  count: number;
  /** One plain extracted copy of the image (tar -xzf), for comparison. */
  extractedTree: string;
  /** A file of the image (relative path) no one has read, for the page cache check. */
  probeFile: string;
  /** Whether the page cache can be dropped (for the fincore check). */
  cold: boolean;
  /** Processes started on the host, for the caller's cleanup on a crash. */
  track: (c: ChildProcess) => void;
  log: (msg: string) => void;
}

export interface ProcessMapping extends FileMapping {
  who: string;
  pid: number;
  /** stat of the binary: inode and link count. */
  ino: number;
  nlink: number;
}

export interface ContainersResult {
  count: number;
  /** Installs 2…count: the image already in the store (checkout, render, start). */
  installs: Sample[];
  /** du bytes: all deployments, the first alone, each further one, the store, berth's whole root, one extracted copy. */
  disk: { all: number; one: number; perExtra: number; store: number; root: number; extracted: number };
  containers: ProcessMapping[];
  /** A process started from a plain copy of the binary. */
  copy: ProcessMapping;
  /** fincore of the busybox object while everything runs: resident / size bytes. */
  busyboxCache?: { resident: number; size: number };
  /** fincore of probeFile in the last container after dropping caches, then after reading it through the first. */
  probe?: { file: string; before: number; after: number; size: number };
  shared: boolean;
}

const BUSYBOX = 'bin/busybox';
const name = (i: number) => `c${String(i).padStart(2, '0')}`;

function fincore(file: string): { resident: number; size: number } {
  const [resident, size] = output('fincore', ['--bytes', '--noheadings', '--output', 'RES,SIZE', file]).split(/\s+/).map(Number) as [number, number];
  return { resident, size };
}

export async function containers(b: ContainersBench): Promise<ContainersResult> {
  const { host, work, count } = b;
  mkdirSync(work, { recursive: true });
  const root = path.join(work, 'root');
  const policy = writePolicy(work);
  const install = (n: string) => ['--root', root, '--quiet', 'install', '--policy', policy, '--tls-verify=false', '--name', n, b.ref];
  b.log(`${count} containers: installing ${name(1)} (pulls the image)`);
  await berthIn(host, b.berthBin, root, ...install(name(1)).slice(2));
  const installs: Sample[] = [];
  for (let i = 2; i <= count; i++) {
    b.log(`${count} containers: installing ${name(i)}`);
    installs.push(await timed(work, process.execPath, [...berthArgv(b.berthBin), ...install(name(i))], { runner: inHost(host) }));
  }
  const rootfs = (i: number) => path.join(root, 'containers', name(i), 'rootfs');

  // du counts a hard-linked inode once, where it first meets it: the first deployment carries the file data.
  const slots = path.join(root, 'containers');
  const all = duBytes(slots);
  const one = duBytes(path.join(slots, `${name(1)}.0`));
  const disk = { all, one, perExtra: (all - one) / (count - 1), store: duBytes(path.join(root, 'store')), root: duBytes(root), extracted: duBytes(b.extractedTree) };

  b.log(`${count} containers: reading /proc/PID/smaps of each container's process and of a copy's`);
  const copyDir = path.join(work, 'copy');
  mkdirSync(copyDir);
  const copyBin = path.join(copyDir, 'busybox');
  copyFileSync(path.join(rootfs(1), BUSYBOX), copyBin);
  const c = spawn(copyBin, ['sleep', '600'], { stdio: 'ignore' });
  b.track(c);
  try {
    await sleep(300);
    const mapping = (who: string, pid: number, smaps: string, file: string): ProcessMapping => {
      const m = fileMapping(smaps, 'busybox');
      if (!m) throw new Error(`${who}: no mapping of busybox in /proc/${pid}/smaps`);
      const st = statSync(file);
      return { who, pid, ino: st.ino, nlink: st.nlink, ...m };
    };
    // Every smaps is read while all the processes run: a page is shared while more than one maps it.
    const mapped: ProcessMapping[] = [];
    for (let i = 1; i <= count; i++) {
      const pid = Number(await host.unitProperty(`${name(i)}.service`, 'MainPID'));
      const smaps = await host.exec('cat', [`/proc/${pid}/smaps`]);
      if (smaps.code !== 0 || pid === 0) throw new Error(`${name(i)}.service: no main process to look at (MainPID ${pid}): ${smaps.stderr.trim()}`);
      mapped.push(mapping(name(i), pid, smaps.stdout, path.join(rootfs(i), BUSYBOX)));
    }
    const copy = mapping('copy', c.pid!, readFileSync(`/proc/${c.pid}/smaps`, 'utf8'), copyBin);
    const hasFincore = tryOutput('fincore', ['--version']) !== undefined;
    const busyboxCache = hasFincore ? fincore(path.join(rootfs(1), BUSYBOX)) : undefined;
    c.kill('SIGKILL');

    let probe: ContainersResult['probe'];
    if (hasFincore && b.cold) {
      const last = path.join(rootfs(count), b.probeFile);
      dropCaches();
      const before = fincore(last).resident;
      readFileSync(path.join(rootfs(1), b.probeFile));
      const after = fincore(last);
      probe = { file: b.probeFile, before, after: after.resident, size: after.size };
    }
    const first = mapped[0]!;
    const shared =
      mapped.every((m) => m.dev === first.dev && m.inode === first.inode && m.sharedCleanKb > 0 && m.privateCleanKb === 0) &&
      copy.inode !== first.inode &&
      (probe === undefined || probe.after >= probe.size);
    return { count, installs, disk, containers: mapped, copy, ...(busyboxCache ? { busyboxCache } : {}), ...(probe ? { probe } : {}), shared };
  } finally {
    c.kill('SIGKILL');
  }
}

const KiB = (n: number) => `${n} KiB`;

/** The page-cache section of docs/performance.md: the evidence, one line per process, and what it shows. */
export function describeSharing(r: ContainersResult, imageName: string): string[] {
  const first = r.containers[0]!;
  const row = (m: ProcessMapping) => `| ${m.who} (pid ${m.pid}) | ${m.ino} (${m.nlink}) | ${m.dev} ${m.inode} | ${KiB(m.rssKb)} | ${KiB(m.pssKb)} | ${KiB(m.sharedCleanKb)} / ${KiB(m.privateCleanKb)} |`;
  const same = r.containers.filter((m) => m.dev === first.dev && m.inode === first.inode).length;
  const lines = [
    `${r.count} containers of ${imageName}, installed with \`berth install\` into one root inside the systemd test host and all running (\`sh -c 'sleep … & wait'\`, busybox); each container's main process (the unit's MainPID) and one \`busybox sleep\` started from a plain copy of the same file (\`copy\`), with their \`/proc/PID/smaps\` read while all of them run:`,
    '',
    '| process | `stat` of its /bin/busybox: inode (links) | mapping in `/proc/PID/maps`: dev inode | busybox Rss | Pss | Shared_Clean / Private_Clean |',
    '|---|---|---|---:|---:|---|',
    ...r.containers.map(row),
    row(r.copy),
    '',
    `${same} of ${r.count} containers map the same inode (${first.dev} ${first.inode}: the store's object, with ${first.nlink} links: the store's and one per container); its pages are counted as Shared_Clean in every one, and each container's Pss (each page divided among the processes mapping it; every container runs busybox twice, its shell and its sleep) is ${KiB(first.pssKb)} of its ${KiB(first.rssKb)} Rss. The copy is inode ${r.copy.inode}: its pages are its own (Private_Clean ${KiB(r.copy.privateCleanKb)}).`,
  ];
  if (r.busyboxCache) {
    lines.push('', `\`fincore\` of that one inode while they run: ${r.busyboxCache.resident} of ${r.busyboxCache.size} bytes in the page cache, once for all ${r.count} containers.`);
  }
  if (r.probe) {
    lines.push(
      '',
      `After dropping caches, \`fincore\` of \`${name(r.count)}/rootfs/${r.probe.file}\` shows ${r.probe.before} bytes resident of a ${r.probe.size}-byte file; after reading the same path through \`${name(1)}\`, ${r.probe.after} (the whole file, in 4 KiB pages), without ${name(r.count)}'s path ever being read: one inode, one set of cached pages.`,
    );
  }
  return lines;
}
