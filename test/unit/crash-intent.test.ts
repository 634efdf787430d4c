/**
 * The pieces of crash safety that need no systemd: crash points kill by
 * SIGKILL at the Nth pass, intent records round-trip and a torn temp file is
 * ignored, absentHostFiles() plans exactly what an apply would create, and
 * the deployment check names orphan slots, staging and half-switched links.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { absentHostFiles } from '../../src/deploy/hostfs.ts';
import { planHostFiles } from '../../src/render/hostfs-plan.ts';
import { Journal, readIntents, removeIntent, writeIntent, type ImagesIntent } from '../../src/deploy/intent.ts';
import { Paths } from '../../src/deploy/paths.ts';
import { checkDeployments } from '../../src/ops/check-deployments.ts';
import { silentReporter } from '../../src/ops/context.ts';

const CRASHPOINT = fileURLToPath(new URL('../../src/crashpoint.ts', import.meta.url));

function passThrice(crashAt: string | undefined) {
  const script = `import { crashPoint } from ${JSON.stringify(CRASHPOINT)};
for (let i = 1; i <= 3; i++) { process.stdout.write('pass ' + i + '\\n'); crashPoint('deploy.symlink'); }
process.stdout.write('done\\n');`;
  return spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
    env: { ...process.env, ...(crashAt === undefined ? {} : { BERTH_CRASH_AT: crashAt }) },
    encoding: 'utf8',
  });
}

describe('crash points', () => {
  it('do nothing unless named', () => {
    const r = passThrice(undefined);
    assert.equal(r.status, 0);
    assert.equal(r.stdout, 'pass 1\npass 2\npass 3\ndone\n');
  });

  it('kill by SIGKILL at the first pass, or at the Nth with NAME#N', () => {
    const first = passThrice('deploy.symlink');
    assert.equal(first.signal, 'SIGKILL');
    assert.equal(first.stdout, 'pass 1\n');
    const second = passThrice('deploy.symlink#2');
    assert.equal(second.signal, 'SIGKILL');
    assert.equal(second.stdout, 'pass 1\npass 2\n');
  });

  it('ignore an unknown name, saying so', () => {
    const r = passThrice('deploy.nowhere');
    assert.equal(r.status, 0);
    assert.match(r.stderr, /BERTH_CRASH_AT=deploy\.nowhere names no crash point/);
  });
});

describe('intent records and the deployment check', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-intent-'));
  });
  after(async () => {
    await fs.rm(dir, { recursive: true, force: true });
  });

  it('round-trip, images first; a temp file of an unfinished write is dropped; removal leaves none', async () => {
    const root = path.join(dir, 'root1');
    await fs.mkdir(root);
    const journal = new Journal(root, { op: 'update', name: 'web', phase: 'stage', fromSlot: 0, toSlot: 1, newSlot: true });
    await journal.write();
    await journal.write({ phase: 'switch', unitEnabled: true, unitActive: false });
    const pull: ImagesIntent = {
      version: 1,
      kind: 'images',
      op: 'load',
      pid: 1,
      started: 'x',
      images: [{ reference: 'docker://r/a:1', manifestDigest: `sha256:${'a'.repeat(64)}`, created: true }],
    };
    await writeIntent(root, pull);
    await fs.writeFile(path.join(root, 'intents', '.web.json.tmp-99'), '{"torn');
    const read = await readIntents(root);
    assert.deepEqual(read.map((i) => i.kind), ['images', 'container']);
    assert.deepEqual({ ...read[1], pid: 0, started: '' }, { ...journal.intent, pid: 0, started: '' });
    assert.deepEqual(await fs.readdir(path.join(root, 'intents')), ['@images.json', 'web.json']);
    await journal.done();
    await removeIntent(root, pull);
    assert.deepEqual(await readIntents(root), []);
  });

  it('a damaged record is an error naming the file, not a guess', async () => {
    const root = path.join(dir, 'root2');
    await fs.mkdir(path.join(root, 'intents'), { recursive: true });
    await fs.writeFile(path.join(root, 'intents', 'web.json'), '{"version": 7}');
    await assert.rejects(readIntents(root), /intent record .*web\.json is unreadable/);
  });

  it('absentHostFiles plans the files and directories that do not exist yet', async () => {
    const host = path.join(dir, 'host');
    await fs.mkdir(path.join(host, 'etc'), { recursive: true });
    await fs.writeFile(path.join(host, 'etc', 'kept.conf'), 'theirs');
    const { plan } = planHostFiles({
      entries: [
        { path: '/etc/kept.conf', type: 'file', mode: 0o644, content: Buffer.from('ours') },
        { path: '/etc/app/new.conf', type: 'file', mode: 0o644, content: Buffer.from('new') },
      ],
      values: {},
    });
    const absent = await absentHostFiles(plan, { hostRoot: host });
    assert.deepEqual(absent.dirs, ['/etc/app']);
    assert.deepEqual(absent.files.map((f) => f.path), ['/etc/app/new.conf']);
  });

  it('the deployment check names staging, orphan slots, bad links, pending intents and orphan units', async () => {
    const root = path.join(dir, 'root3');
    const unitDir = path.join(dir, 'units');
    const paths = new Paths(root, unitDir);
    await fs.mkdir(path.join(root, 'containers', '.staging-web-1-x'), { recursive: true });
    await fs.mkdir(path.join(root, 'containers', 'old.1'));
    await fs.symlink('elsewhere', path.join(root, 'containers', 'bad'));
    await fs.mkdir(unitDir);
    await fs.writeFile(path.join(unitDir, 'gone.service'), `[Service]\nWorkingDirectory=${path.join(root, 'containers', 'gone')}\n`);
    await fs.writeFile(path.join(unitDir, 'other.service'), '[Service]\nExecStart=/bin/true\n');
    await new Journal(root, { op: 'install', name: 'web', phase: 'stage' }).write();
    const r = await checkDeployments({ paths, report: silentReporter });
    assert.equal(r.ok, false);
    const text = r.problems.join('\n');
    assert.match(text, /interrupted install of web .* is not recovered yet/);
    assert.match(text, /staging directory .*\.staging-web-1-x is left over/);
    assert.match(text, /slot .*old\.1 belongs to no installed container/);
    assert.match(text, /bad points at elsewhere/);
    assert.match(text, /unit .*gone\.service runs gone .* \(orphan unit\)/);
    assert.doesNotMatch(text, /other\.service/);
  });
});
