// ops/share-source.ts: the berth.conf keys as the wrapper passes them ($BERTH_SHARED_STORE*).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isBerthError } from '../../src/errors.ts';
import { shareConfig } from '../../src/ops/share-source.ts';

test('no shared store unless set; fallback pull by default; refuse when asked', () => {
  assert.equal(shareConfig({}), undefined);
  assert.equal(shareConfig({ BERTH_SHARED_STORE: '' }), undefined, 'empty: no share (the environment wins over berth.conf)');
  assert.deepEqual(shareConfig({ BERTH_SHARED_STORE: '/srv/share/' }), { root: '/srv/share', fallback: 'pull' });
  assert.deepEqual(shareConfig({ BERTH_SHARED_STORE: '/srv/share', BERTH_SHARED_STORE_FALLBACK: 'refuse' }), { root: '/srv/share', fallback: 'refuse' });
});

test('bad values are one-line configuration errors (exit 2)', () => {
  for (const env of [{ BERTH_SHARED_STORE: 'relative/dir' }, { BERTH_SHARED_STORE: '/srv/share', BERTH_SHARED_STORE_FALLBACK: 'maybe' }]) {
    assert.throws(
      () => shareConfig(env),
      (e: unknown) => isBerthError(e) && e.code === 'CONFIG_INVALID' && e.exitCode === 2 && !e.message.includes('\n'),
    );
  }
});
