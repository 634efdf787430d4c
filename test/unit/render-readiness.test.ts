import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { addNotifySocket, type RuntimeSpec } from '../../src/render/oci-config.ts';
import { checkReadiness, readinessFromLabels, readyCheckArgs, splitHostPort } from '../../src/runtime/readiness.ts';
import { pathsCreatedBy } from '../../src/render/tmpfiles.ts';
import { runModeOf } from '../../src/render/unit-runtime.ts';

describe('readiness specs', () => {
  it('takes one probe with a default timeout', () => {
    assert.deepEqual(checkReadiness({ tcp: '127.0.0.1:2379' }, 'x'), { kind: 'tcp', target: '127.0.0.1:2379', timeoutSec: 60 });
    assert.deepEqual(checkReadiness({ http: 'http://[::1]:8080/h', timeoutSec: 5 }, 'x'), { kind: 'http', target: 'http://[::1]:8080/h', timeoutSec: 5 });
    assert.equal(checkReadiness({}, 'x'), undefined);
  });
  it('refuses two probes, a bare timeout, bad addresses, URLs and timeouts, naming the source', () => {
    const refused = (spec: Parameters<typeof checkReadiness>[0], text: string) =>
      assert.throws(() => checkReadiness(spec, '--ready-*'), (e: Error & { code?: string }) => e.code === 'USAGE' && e.message.startsWith('--ready-*: ') && e.message.includes(text));
    refused({ tcp: '127.0.0.1:1', cmd: 'true' }, 'more than one');
    refused({ timeoutSec: 3 }, 'without a probe');
    refused({ tcp: '127.0.0.1' }, 'is not HOST:PORT');
    refused({ tcp: '127.0.0.1:70000' }, 'is not HOST:PORT');
    refused({ http: 'ftp://x/' }, 'not an http(s) URL');
    refused({ http: 'http://u:p@127.0.0.1/' }, 'credentials');
    refused({ cmd: 'a\nb' }, 'control character');
    refused({ cmd: 'true', timeoutSec: 0 }, 'whole number');
    refused({ cmd: 'true', timeoutSec: 1.5 }, 'whole number');
  });
  it('lets image labels probe only loopback addresses', () => {
    assert.deepEqual(readinessFromLabels({ 'berth.ready.tcp': '127.0.0.1:2379', 'berth.ready.timeout': '30' }), { kind: 'tcp', target: '127.0.0.1:2379', timeoutSec: 30 });
    assert.deepEqual(readinessFromLabels({ 'berth.ready.http': 'http://localhost:80/' })?.kind, 'http');
    assert.equal(readinessFromLabels({ other: 'x' }), undefined);
    assert.throws(() => readinessFromLabels({ 'berth.ready.tcp': '10.0.0.1:22' }), /not a loopback address/);
    assert.throws(() => readinessFromLabels({ 'berth.ready.http': 'http://169.254.169.254/latest' }), /not a loopback address/);
    assert.throws(() => readinessFromLabels({ 'berth.ready.cmd': 'true', 'berth.ready.timeout': 'soon' }), /whole number/);
  });
  it('splits HOST:PORT', () => {
    assert.deepEqual(splitHostPort('[::1]:80'), { host: '::1', port: 80 });
    assert.equal(splitHostPort('[nothost]:80'), undefined);
    assert.equal(splitHostPort('a b:80'), undefined);
  });
  it('gives ready-check its arguments', () => {
    assert.deepEqual(readyCheckArgs({ kind: 'cmd', target: 'true', timeoutSec: 9 }, '/usr/bin/crun', 'etcd'), ['ready-check', '--cmd', 'true', '--runtime', '/usr/bin/crun', '--container', 'etcd', '--timeout', '9']);
  });
});

describe('run modes and the notify socket', () => {
  it('reads the run mode from the template as written', () => {
    assert.equal(runModeOf(undefined), 'detach');
    assert.equal(runModeOf('[Service]\nType=notify\nExecStart=$EXEC_START\n'), 'notify');
    assert.equal(runModeOf('[Service]\nType=oneshot\n'), 'foreground');
    assert.equal(runModeOf('[Service]\nType=forking\n'), 'detach');
    assert.equal(runModeOf('not a unit'), 'detach');
  });
  it('binds systemd\'s socket last and points NOTIFY_SOCKET at it, replacing the image\'s', () => {
    const spec = {
      ociVersion: '1.0.2',
      process: { user: { uid: 0, gid: 0 }, args: ['x'], cwd: '/', env: ['A=1', 'NOTIFY_SOCKET=/elsewhere'] },
      root: { path: 'rootfs', readonly: true },
      mounts: [{ destination: '/run', type: 'tmpfs', source: 'tmpfs' }],
    } as RuntimeSpec;
    addNotifySocket(spec);
    assert.deepEqual(spec.process.env, ['A=1', 'NOTIFY_SOCKET=/run/host/notify']);
    assert.deepEqual(spec.mounts!.at(-1), { destination: '/run/host/notify', type: 'bind', source: '/run/systemd/notify', options: ['bind', 'nosuid', 'nodev', 'noexec'] });
    addNotifySocket(spec);
    assert.equal(spec.mounts!.filter((m) => m.destination === '/run/host/notify').length, 1);
  });
  it('knows which paths a tmpfiles text creates', () => {
    assert.deepEqual([...pathsCreatedBy('D    /run/flannel   - - - - -\nd /etc/x/ - - - -\nr /etc/x/y.conf\n# c\n')], ['/run/flannel', '/etc/x']);
  });
});
