/**
 * Stack updates end to end on a real systemd: an etcd -> flannel -> docker
 * plan (busybox stand-ins whose every start leaves a line in the journal)
 * moved from v1 to v2 as one transaction. A v2 flannel that never becomes
 * ready puts all three back on v1, each started again once in order and
 * active; a second run does the same without restarting anyone twice; a
 * good v2 updates all three in dependency order, each started once. And a
 * Restart=always crash loop is a failed install, not an installed container.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage, pushImage, type FixtureImageSpec } from '../fixtures/oci-image.ts';
import { atomicServiceTemplate, bindMount, configTemplate } from '../fixtures/system-images.ts';
import { BERTH, BerthEnv } from '../harness/berth-env.ts';

const PATH_ENV = 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
const LABELS = { 'atomic.type': 'system' };

/**
 * Says "NAME VERSION up" at every start, then stays up. A broken version is
 * a Type=notify daemon that runs but never sends READY=1: its start times
 * out (TimeoutStartSec= in its template), the way a real flanneld that never
 * reaches etcd fails.
 */
const RUN_SH = `#!/bin/sh
trap 'exit 0' TERM
v=$(cat /etc/stack-version)
case "$v" in *broken*) echo "$NAME $v never becomes ready"; while :; do sleep 3600 & wait $!; done ;; esac
echo "$NAME $v up"
while :; do sleep 3600 & wait $!; done
`;

function stackImage(version: string, service: string[] = []): FixtureImageSpec {
  return {
    layers: [
      [
        { path: 'usr/bin/run.sh', content: RUN_SH, executable: true },
        { path: 'etc/stack-version', content: `${version}\n` },
        { path: 'state', type: 'dir' },
        { path: 'exports/service.template', content: atomicServiceTemplate({ description: `stack member $NAME ${version}`, service }) },
        { path: 'exports/tmpfiles.template', content: 'd ${STATE_DIRECTORY}/${NAME} 0755 - - - -\n' },
        {
          path: 'exports/config.json.template',
          content: configTemplate({ args: ['/usr/bin/run.sh'], env: ['NAME=$NAME', PATH_ENV], mounts: [bindMount('$STATE_DIRECTORY/$NAME', '/state')] }),
        },
      ],
    ],
    config: { Cmd: ['/usr/bin/run.sh'], Env: [PATH_ENV], Labels: LABELS },
  };
}

/** Restart=always around a process that exits at once: systemd restarts it for ever. */
function crashLoopImage(): FixtureImageSpec {
  const args = ['/bin/sh', '-c', 'echo "crashing"; exit 1'];
  const unit = ['[Unit]', 'Description=crash loop', '', '[Service]', 'ExecStart=$EXEC_START', 'Restart=always', 'RestartSec=100ms', 'WorkingDirectory=$DESTDIR', '', '[Install]', 'WantedBy=multi-user.target', ''].join('\n');
  return {
    layers: [[
      { path: 'exports/service.template', content: unit },
      { path: 'exports/config.json.template', content: configTemplate({ args, env: [PATH_ENV] }) },
    ]],
    config: { Cmd: args, Env: [PATH_ENV], Labels: LABELS },
  };
}

interface Action { name: string; action: string; result?: string; reason?: string; error?: string; state?: { activeState: string; subState: string } }
interface Listed { name: string; manifestDigest: string; slot: number; activeState: string }

const NAMES = ['etcd', 'flannel', 'docker'] as const;

describe('berth apply: stack updates', () => {
  let env: BerthEnv;
  const digests: Record<string, string> = {};

  const image = (repo: string, tag: string) => `docker://${env.registry.host}/stack/${repo}:${tag}`;
  const plan = (tags: { etcd: string; flannel: string; docker: string }) => `version: 1
defaults: { tlsVerify: false }
containers:
  docker:
    image: ${image('docker', tags.docker)}
    requires: [flannel]
    after: [flannel]
  flannel:
    image: ${image('flannel', tags.flannel)}
    after: [etcd]
  etcd:
    image: ${image('etcd', tags.etcd)}
  hello:
    image: ${image('hello', '1')}
`;
  const apply = async (text: string) => {
    const file = path.join(env.work, `plan-${Date.now()}.yaml`);
    await fs.writeFile(file, text);
    return env.host.exec(process.execPath, [BERTH, '--root', env.root, 'apply', '--policy', env.policy, '--settle', '1', '--json', file], { timeoutMs: 600_000 });
  };
  /** Every start of each container's process, by name, as its lines in systemd's journal say (its version each time). */
  const starts = async (): Promise<Record<string, string[]>> => {
    await env.host.exec('journalctl', ['--sync']);
    const out: Record<string, string[]> = {};
    for (const n of [...NAMES, 'hello']) {
      const r = await env.host.exec('journalctl', ['--no-pager', '-o', 'cat', '-u', `${n}.service`]);
      out[n] = r.stdout.split('\n').map((l) => new RegExp(`^${n} (\\S+) (up|never becomes ready)$`).exec(l.trim())?.[1]).filter((v): v is string => v !== undefined);
    }
    return out;
  };
  const listed = async (): Promise<Record<string, Listed>> => {
    const r = await env.berth('list', '--json');
    assert.equal(r.code, 0, r.stderr);
    return Object.fromEntries((JSON.parse(r.stdout) as Listed[]).map((l) => [l.name, l]));
  };
  const since = (a: string[], b: string[]) => b.slice(a.length);

  before(async () => {
    env = await BerthEnv.start('berth-stack');
    const specs: [string, string, FixtureImageSpec][] = [
      ['etcd', '1', stackImage('etcd-1')], ['etcd', '2', stackImage('etcd-2')],
      ['flannel', '1', stackImage('flannel-1')], ['flannel', '2', stackImage('flannel-2')], ['flannel', '2-broken', stackImage('flannel-2-broken', ['Type=notify', 'NotifyAccess=all', 'TimeoutStartSec=6s'])],
      ['docker', '1', stackImage('docker-1')], ['docker', '2', stackImage('docker-2')],
      ['hello', '1', stackImage('hello-1')],
      ['crashloop', '1', crashLoopImage()],
    ];
    for (const [repo, tag, spec] of specs) {
      const built = await buildImage(env.layout, `${repo}-${tag}`, spec);
      await pushImage(built, env.registry.host, `stack/${repo}`, tag);
      digests[`${repo}:${tag}`] = built.manifestDigest;
    }
  });

  after(async () => {
    await env?.stop();
  });

  it('installs v1 of etcd -> flannel -> docker (and an unrelated hello), all active', async () => {
    const r = await apply(plan({ etcd: '1', flannel: '1', docker: '1' }));
    assert.equal(r.code, 0, r.stderr);
    const { actions } = JSON.parse(r.stdout) as { actions: Action[] };
    assert.deepEqual(actions.map((a) => [a.name, a.result, a.state?.activeState]), [
      ['etcd', 'installed', 'active'], ['flannel', 'installed', 'active'], ['docker', 'installed', 'active'], ['hello', 'installed', 'active'],
    ]);
  });

  /** v2 with a flannel that never becomes ready: everything back on v1, each started once more, in order. */
  const failedStack = async (round: string) => {
    const before = await starts();
    const helloSince = await env.host.unitProperty('hello.service', 'ActiveEnterTimestampMonotonic');
    const r = await apply(plan({ etcd: '2', flannel: '2-broken', docker: '2' }));
    assert.equal(r.code, 7, `${round}: a rolled back stack exits 7\n${r.stderr}`);
    const out = JSON.parse(r.stdout) as { actions: Action[]; error: { code: string; message: string } };
    const by = Object.fromEntries(out.actions.map((a) => [a.name, a]));
    for (const n of NAMES) {
      assert.equal(by[n]!.action, 'update', `${round}: ${n}`);
      assert.equal(by[n]!.result, 'rolled back', `${round}: ${n}`);
      assert.deepEqual(by[n]!.state, { activeState: 'active', subState: 'running' }, `${round}: ${n} read back from systemd`);
    }
    assert.match(by['flannel']!.error ?? '', /flannel\.service/);
    assert.equal(by['hello']!.result, 'unchanged');
    assert.equal(out.error.code, 'UPDATE_FAILED');
    assert.match(out.error.message, /rolled back etcd, flannel, docker/);
    assert.match(r.stderr, /never becomes ready/, 'the journal lines name the cause');

    const l = await listed();
    for (const n of NAMES) {
      assert.equal(l[n]!.manifestDigest, digests[`${n}:1`], `${round}: ${n} runs v1 again`);
      assert.equal(l[n]!.slot, 0, `${round}: ${n} is on its first slot`);
      assert.equal(l[n]!.activeState, 'active');
      const s = JSON.parse((await env.berth('status', '--json', n)).stdout) as { slots: { slot: number }[] };
      assert.deepEqual(s.slots.map((x) => x.slot), [0], `${round}: the failed stack leaves no slot of ${n} behind`);
    }
    const after = await starts();
    assert.deepEqual(since(before['etcd']!, after['etcd']!), ['etcd-2', 'etcd-1'], `${round}: etcd ran v2, then v1 once`);
    assert.deepEqual(since(before['docker']!, after['docker']!), ['docker-1'], `${round}: docker (stopped while flannel switched) started once`);
    const flannel = since(before['flannel']!, after['flannel']!);
    assert.equal(flannel.at(-1), 'flannel-1', `${round}: flannel ends on v1`);
    assert.equal(flannel.filter((v) => v === 'flannel-1').length, 1, `${round}: flannel v1 started once (${flannel.join(', ')})`);
    assert.deepEqual(since(before['hello']!, after['hello']!), [], `${round}: hello untouched`);
    assert.equal(await env.host.unitProperty('hello.service', 'ActiveEnterTimestampMonotonic'), helloSince);
    assert.equal((await env.berth('verify')).code, 0, 'berth verify passes: no intent, no stray slot');
  };

  it('rolls every changed container back when flannel v2 never becomes ready; dependents started once, all active', () => failedStack('first run'));

  it('a second run of the same apply has the same outcome and starts nobody twice', () => failedStack('second run'));

  it('updates all three in dependency order, each started once', async () => {
    const before = await starts();
    const r = await apply(plan({ etcd: '2', flannel: '2', docker: '2' }));
    assert.equal(r.code, 0, r.stderr);
    const { actions } = JSON.parse(r.stdout) as { actions: Action[] };
    assert.deepEqual(actions.map((a) => [a.name, a.result, a.state?.activeState]), [
      ['etcd', 'updated', 'active'], ['flannel', 'updated', 'active'], ['docker', 'updated', 'active'], ['hello', 'unchanged', 'active'],
    ]);
    const l = await listed();
    for (const n of NAMES) {
      assert.equal(l[n]!.manifestDigest, digests[`${n}:2`], n);
      assert.equal(l[n]!.slot, 1, n);
    }
    const after = await starts();
    for (const n of NAMES) assert.deepEqual(since(before[n]!, after[n]!), [`${n}-2`], `${n} started once, on v2`);
    const mono = async (n: string) => Number(await env.host.unitProperty(`${n}.service`, 'ActiveEnterTimestampMonotonic'));
    const [e, f, d] = [await mono('etcd'), await mono('flannel'), await mono('docker')];
    assert.ok(e < f && f < d, `started in order etcd (${e}) < flannel (${f}) < docker (${d})`);
    const again = await apply(plan({ etcd: '2', flannel: '2', docker: '2' }));
    assert.equal(again.code, 0, again.stderr);
    assert.ok((JSON.parse(again.stdout) as { actions: Action[] }).actions.every((a) => a.result === 'unchanged'));
  });

  it('update --all uses the same transaction: nothing new, nothing touched', async () => {
    const r = await env.berth('update', '--all', '--tls-verify=false', '--json');
    assert.equal(r.code, 0, r.stderr);
    const { results } = JSON.parse(r.stdout) as { results: { name: string; result: string; state?: { activeState: string } }[] };
    assert.deepEqual(results.map((x) => [x.name, x.result, x.state?.activeState]), [
      ['etcd', 'unchanged', 'active'], ['flannel', 'unchanged', 'active'], ['docker', 'unchanged', 'active'], ['hello', 'unchanged', 'active'],
    ]);
  });

  it('a Restart=always crash loop fails its install (exit 7) and leaves nothing', async () => {
    const r = await env.berth('install', '--tls-verify=false', '--name', 'crashloop', image('crashloop', '1'));
    assert.equal(r.code, 7, r.stderr);
    assert.match(r.stderr, /crashloop\.service failed to start .*(restarted|waiting to be restarted|not active)/);
    assert.equal(await env.host.unitProperty('crashloop.service', 'LoadState'), 'not-found');
    await assert.rejects(fs.lstat(path.join(env.root, 'containers', 'crashloop')));
    await assert.rejects(fs.lstat(path.join(env.root, 'containers', 'crashloop.0')));
  });

  it('cleans up', async () => {
    const r = await env.berth('uninstall', '--all', '--purge-data');
    assert.equal(r.code, 0, r.stderr);
  });
});
