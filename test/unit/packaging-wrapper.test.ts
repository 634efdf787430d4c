/**
 * packaging/wrapper.sh, the installed `berth` command: berth.conf's root and
 * min-rate reach berth as $BERTH_ROOT and $BERTH_MIN_RATE unless the
 * environment already says, and the arguments pass through untouched. A
 * fake `node` first on PATH prints what it was given.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));

describe('packaging/wrapper.sh', () => {
  let dir: string;
  let conf: string;
  let wrapper: string;

  before(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'berth-wrapper-'));
    conf = path.join(dir, 'berth.conf');
    wrapper = path.join(dir, 'berth');
    const text = (await readFile(path.join(REPO, 'packaging/wrapper.sh'), 'utf8')).replaceAll('@CONF@', conf).replaceAll('@LIBDIR@', '/opt/berth');
    await writeFile(wrapper, text, { mode: 0o755 });
    await writeFile(path.join(dir, 'node'), '#!/bin/sh\nprintf "root=%s\\nrate=%s\\n" "${BERTH_ROOT-unset}" "${BERTH_MIN_RATE-unset}"\nfor a in "$@"; do printf "arg=%s\\n" "$a"; done\n');
    await chmod(path.join(dir, 'node'), 0o755);
  });

  after(() => rm(dir, { recursive: true, force: true }));

  const berth = (env: Record<string, string>, ...args: string[]): Promise<string[]> =>
    new Promise((resolve, reject) => {
      execFile(wrapper, args, { env: { PATH: `${dir}:/usr/bin:/bin`, ...env } }, (err, stdout, stderr) => (err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim().split('\n'))));
    });

  it('passes root and min-rate from berth.conf, and every argument as given', async () => {
    await writeFile(conf, '# comment\nroot=/srv/berth\nmin-rate=2048/30\nunknown=1\n');
    assert.deepEqual(await berth({}, 'pull', 'a b', '--x=$HOME'), [
      'root=/srv/berth',
      'rate=2048/30',
      'arg=--max-semi-space-size=4',
      'arg=/opt/berth/bin/berth.js',
      'arg=pull',
      'arg=a b',
      'arg=--x=$HOME',
    ]);
  });

  it('lets the environment win over the file', async () => {
    await writeFile(conf, 'root=/srv/berth\nmin-rate=2048/30');
    assert.deepEqual((await berth({ BERTH_ROOT: '/mine', BERTH_MIN_RATE: '0' })).slice(0, 2), ['root=/mine', 'rate=0']);
  });

  it('passes shared-store and shared-store-fallback; the environment (even an empty share) wins', async () => {
    const shareNode = '#!/bin/sh\nprintf "share=%s\\nfallback=%s\\n" "${BERTH_SHARED_STORE-unset}" "${BERTH_SHARED_STORE_FALLBACK-unset}"\n';
    const node = path.join(dir, 'node');
    const saved = await readFile(node, 'utf8');
    await writeFile(node, shareNode);
    try {
      await writeFile(conf, 'shared-store=/srv/share\nshared-store-fallback=refuse\n');
      assert.deepEqual(await berth({}), ['share=/srv/share', 'fallback=refuse']);
      assert.deepEqual(await berth({ BERTH_SHARED_STORE: '', BERTH_SHARED_STORE_FALLBACK: 'pull' }), ['share=', 'fallback=pull']);
    } finally {
      await writeFile(node, saved);
    }
  });

  it('sets nothing when the file is absent or says nothing', async () => {
    await writeFile(conf, '#min-rate=1024/60\n');
    assert.deepEqual((await berth({})).slice(0, 2), ['root=unset', 'rate=unset']);
    await rm(conf);
    assert.deepEqual((await berth({})).slice(0, 2), ['root=unset', 'rate=unset']);
  });
});
