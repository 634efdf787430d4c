import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { acquireLock } from '../../src/deploy/lock.ts';

describe('the state lock', () => {
  let dir: string;
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-lock-'));
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('serialises holders: the second waits, is told who holds it, then gets it', async () => {
    const first = await acquireLock(dir, 'install etcd');
    let toldOwner: string | undefined;
    const order: string[] = [];
    const second = acquireLock(dir, 'update etcd', { onWait: (o) => (toldOwner = o?.what) }).then((l) => {
      order.push('second');
      return l;
    });
    await new Promise((r) => setTimeout(r, 300));
    order.push('release first');
    await first.release();
    const l2 = await second;
    assert.deepEqual(order, ['release first', 'second']);
    assert.equal(toldOwner, 'install etcd');
    await l2.release();
  });

  it('fails with LOCKED after the timeout', async () => {
    const held = await acquireLock(dir, 'install etcd');
    const t0 = Date.now();
    await assert.rejects(acquireLock(dir, 'x', { timeoutMs: 1000 }), (e: { code?: string; message?: string }) => e.code === 'LOCKED' && /install etcd/.test(e.message ?? ''));
    assert.ok(Date.now() - t0 >= 900);
    await held.release();
  });

  it('is released when the holder is killed with SIGKILL', async () => {
    const holder = spawn(process.execPath, ['--import', 'tsx', '-e', `
      const { acquireLock } = await import(${JSON.stringify(path.resolve('src/deploy/lock.ts'))});
      await acquireLock(${JSON.stringify(dir)}, 'doomed');
      process.stdout.write('held\\n');
      setInterval(() => {}, 1000);
    `], { stdio: ['ignore', 'pipe', 'inherit'] });
    await new Promise<void>((r) => holder.stdout.on('data', (d: Buffer) => d.toString().includes('held') && r()));
    holder.kill('SIGKILL');
    const l = await acquireLock(dir, 'after crash', { timeoutMs: 5000 });
    await l.release();
  });
});
