/**
 * The demo: on a throwaway systemd test host with a local registry, build
 * signed images of etcd (Debian's), a flannel-like and a docker-like
 * service, require signatures by policy, `berth apply` a plan with
 * etcd -> flannel -> docker, show `berth list` and the order systemd started
 * them in, update etcd to a broken version and watch berth roll it back, then
 * clean up. Coloured on a terminal, plain when piped.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs/promises';
import path from 'node:path';
import { promisify } from 'node:util';
import { GpgHome } from '../test/fixtures/gpg.ts';
import { buildImage, pushImage } from '../test/fixtures/oci-image.ts';
import { dockerLikeImage, etcdImage, flannelLikeImage } from '../test/fixtures/system-images.ts';
import { BerthEnv } from '../test/harness/berth-env.ts';
import { unusedPort } from '../test/harness/registry.ts';

const run = promisify(execFile);
const tty = process.stdout.isTTY === true && !process.env['NO_COLOR'];
const c = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const title = (s: string) => console.log(`\n${c('1;36', '==>')} ${c('1', s)}`);
const show = (s: string) => console.log(s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n'));
const dim = (s: string) => show(c('2', s));

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('berth demo: must run as root (it boots a private systemd and runs containers)');
    return 9;
  }
  let env: BerthEnv | undefined;
  let gpg: GpgHome | undefined;
  try {
    title('Booting a throwaway systemd test host and a local registry');
    env = await BerthEnv.start('berth-demo');
    const { host, registry, work, layout } = env;
    show(`systemd is PID 1 of private namespaces (host pid ${host.pid}); registry on ${registry.host}`);

    const berth = async (command: string, ...args: string[]) => {
      console.log(c('2', `  $ berth ${[command, ...args].join(' ')}`));
      const r = await env!.host.exec(process.execPath, [path.resolve('bin/berth.js'), '--root', env!.root, command, ...args], { timeoutMs: 300_000 });
      if (r.stderr.trim()) dim(r.stderr);
      if (r.stdout.trim()) show(r.stdout);
      return r;
    };
    const must = async (command: string, ...args: string[]) => {
      const r = await berth(command, ...args);
      if (r.code !== 0) throw new Error(`berth ${command} exited ${r.code}`);
      return r;
    };

    const ports = { client: await unusedPort(), peer: await unusedPort(), docker: await unusedPort() };
    const etcdUrl = `http://127.0.0.1:${ports.client}`;
    title('Building etcd (Debian\'s), flannel-like and docker-like images, pushing and signing them');
    gpg = await GpgHome.create();
    const fpr = await gpg.generateKey('berth demo', 'demo@berth.test', 'ed25519');
    const secret = path.join(work, 'signing-key.asc');
    const pub = path.join(work, 'signing-key.gpg');
    await fs.writeFile(secret, await gpg.exportSecret(fpr));
    await fs.writeFile(pub, await gpg.exportPublic([fpr]));
    const trust = ['--policy', path.join(work, 'policy-signed.json'), '--registries.d', path.join(work, 'registries.d')];
    const reg = registry.host;
    const images = {
      etcd: await buildImage(layout, 'etcd', etcdImage({ clientPort: ports.client, peerPort: ports.peer })),
      flannel: await buildImage(layout, 'flannel', flannelLikeImage({ etcdEndpoint: etcdUrl })),
      docker: await buildImage(layout, 'docker', dockerLikeImage(ports.docker)),
    };
    const etcdSpec = etcdImage({ clientPort: ports.client, peerPort: ports.peer });
    const broken = await buildImage(layout, 'etcd-broken', {
      ...etcdSpec,
      layers: [...(etcdSpec.layers ?? []), [{ path: 'usr/bin/etcd-env.sh', content: '#!/bin/sh\necho "etcd 2.0-broken: cannot open its data"\nexit 1\n', executable: true }]],
    });
    await fs.mkdir(path.join(work, 'registries.d'));
    await must('trust', 'set', ...trust, '--type', 'signedBy', '--pubkeys', pub, '--lookaside', `file://${path.join(work, 'signatures')}`, reg);
    await must('trust', 'default', ...trust, 'reject');
    for (const [name, image] of Object.entries(images)) {
      await pushImage(image, reg, `system/${name}`, '1.0');
      await must('sign', ...trust, '--tls-verify=false', '--key', secret, `docker://${reg}/system/${name}:1.0`);
    }
    await pushImage(broken, reg, 'system/etcd', '2.0');
    await must('sign', ...trust, '--tls-verify=false', '--key', secret, `docker://${reg}/system/etcd:2.0`);

    title('An unsigned image is refused before anything is downloaded');
    await pushImage(images.docker, reg, 'untrusted/docker', '1.0');
    const refused = await berth('pull', ...trust, '--tls-verify=false', `docker://${reg}/untrusted/docker:1.0`);
    if (refused.code !== 8) throw new Error(`expected exit 8 for an unsigned image, got ${refused.code}`);

    title('Applying a host plan: etcd -> flannel -> docker');
    const plan = path.join(work, 'plan.yaml');
    await fs.writeFile(
      plan,
      `version: 1
containers:
  etcd:
    image: docker://${reg}/system/etcd:1.0
  flannel:
    image: docker://${reg}/system/flannel:1.0
    after: [etcd]
    requiredBy: [docker]
  docker:
    image: docker://${reg}/system/docker:1.0
    requires: [flannel]
    after: [flannel]
`,
    );
    show(await fs.readFile(plan, 'utf8'));
    await must('apply', ...trust, '--tls-verify=false', plan);
    await run('etcdctl', ['--endpoints', etcdUrl, 'put', '/atomic.io/network/config', '{"Network":"10.40.0.0/16"}'], { env: { ...process.env, ETCDCTL_API: '3' } });

    title('What berth and systemd say');
    await must('list');
    const order = [];
    for (const unit of ['etcd.service', 'flannel.service', 'docker.service']) order.push({ unit, t: Number(await host.unitProperty(unit, 'ActiveEnterTimestampMonotonic')) });
    order.sort((a, b) => a.t - b.t);
    show(`systemd started them in this order: ${order.map((o) => c('32', o.unit)).join(' -> ')}`);
    const served = await waitFor(async () => (await fetch(`http://127.0.0.1:${ports.docker}/`)).text());
    show(`docker-like got its network from flannel, which read it from etcd: ${c('32', served.trim())}`);
    if (order.map((o) => o.unit).join() !== 'etcd.service,flannel.service,docker.service') throw new Error('the start order is wrong');

    title('A second apply of the same plan changes nothing');
    await must('apply', ...trust, '--tls-verify=false', plan);

    title('Updating etcd to a broken 2.0: berth rolls back by itself');
    const upd = await berth('update', ...trust, '--tls-verify=false', '--settle', '2', '--rebase', `docker://${reg}/system/etcd:2.0`, 'etcd');
    if (upd.code === 0) throw new Error('the broken update was not detected');
    const value = await run('etcdctl', ['--endpoints', etcdUrl, 'get', '--print-value-only', '/atomic.io/network/config'], { env: { ...process.env, ETCDCTL_API: '3' } });
    show(`etcd answers again, with its data: ${c('32', value.stdout.trim())} (berth exited ${upd.code})`);
    await must('status', 'etcd');

    title('Cleaning up');
    await must('uninstall', '--all');
    console.log(`\n${c('1;32', 'Demo complete.')}`);
    return 0;
  } catch (e) {
    console.error(`\n${c('1;31', 'Demo failed:')} ${(e as Error).message}`);
    return 1;
  } finally {
    await gpg?.cleanup();
    await env?.stop();
    show('test host and registry stopped; no process, mount, cgroup or temp file left');
  }
}

async function waitFor(probe: () => Promise<string>, timeoutMs = 30_000): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const v = await probe();
      if (v) return v;
    } catch {
      // not yet
    }
    if (Date.now() > deadline) throw new Error('timed out waiting for the docker-like service');
    await new Promise((r) => setTimeout(r, 250));
  }
}

process.exitCode = await main();
