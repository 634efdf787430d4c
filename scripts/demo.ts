/**
 * The demo: a throwaway systemd test host and registry, an image pushed to it,
 * `berth install --system`, `berth list`, a request to the container from the
 * host, and a clean teardown. Coloured on a terminal, plain when piped.
 */
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { webImage } from '../test/fixtures/images.ts';
import { buildImage, pushImage } from '../test/fixtures/oci-image.ts';
import { TestRegistry, unusedPort } from '../test/harness/registry.ts';
import { TestHost } from '../test/harness/test-host.ts';

const BERTH = fileURLToPath(new URL('../bin/berth.js', import.meta.url));
const tty = process.stdout.isTTY === true && !process.env['NO_COLOR'];
const c = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const title = (s: string) => console.log(`\n${c('1;36', '==>')} ${c('1', s)}`);
const cmd = (s: string) => console.log(c('2', `$ ${s}`));
const indent = (s: string) => s.trimEnd().split('\n').map((l) => `    ${l}`).join('\n');

async function main(): Promise<number> {
  if (process.getuid?.() !== 0) {
    console.error('berth demo: must run as root (it boots a private systemd and runs containers)');
    return 9;
  }
  const work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-demo-'));
  const root = path.join(work, 'berth');
  let host: TestHost | undefined;
  let registry: TestRegistry | undefined;
  try {
    title('Booting a throwaway systemd test host and a local registry');
    [host, registry] = await Promise.all([TestHost.start(), TestRegistry.start()]);
    console.log(indent(`systemd is PID 1 of private namespaces (host pid ${host.pid}); registry on ${registry.host}`));

    const port = await unusedPort();
    const page = `<h1>Hello from a berth system container</h1>\n`;
    title('Building a demo image (busybox httpd serving a page) and pushing it');
    const image = await buildImage(path.join(work, 'layout'), 'web', webImage(port, page));
    const digest = await pushImage(image, registry.host, 'demo/web', '1.0');
    console.log(indent(`docker://${registry.host}/demo/web:1.0  ${digest}`));

    const berth = async (...args: string[]) => {
      cmd(`berth ${args.join(' ')}`);
      const r = await host!.exec(process.execPath, [BERTH, '--root', root, ...args], { timeoutMs: 180_000 });
      if (r.stderr.trim()) console.log(c('2', indent(r.stderr)));
      if (r.stdout.trim()) console.log(indent(r.stdout));
      if (r.code !== 0) throw new Error(`berth ${args[0]} exited ${r.code}`);
      return r;
    };

    title('Installing it as a system container');
    await berth('install', '--system', '--tls-verify=false', `docker://${registry.host}/demo/web:1.0`, '--name', 'web');

    title('What berth and systemd say');
    await berth('list');
    cmd('systemctl is-active web.service');
    console.log(indent((await host.systemctl('is-active', 'web.service')).stdout));

    title(`Asking the container for its page from the host (http://127.0.0.1:${port}/)`);
    const res = await fetch(`http://127.0.0.1:${port}/`);
    const body = await res.text();
    console.log(indent(`${res.status} ${c('32', body.trim())}`));
    if (body !== page) throw new Error('the page did not come from the image');

    title('Uninstalling');
    await berth('uninstall', 'web');
    cmd('systemctl show -p LoadState web.service');
    console.log(indent(`LoadState=${await host.unitProperty('web.service', 'LoadState')}`));
    console.log(`\n${c('1;32', 'Demo complete.')}`);
    return 0;
  } catch (e) {
    console.error(`\n${c('1;31', 'Demo failed:')} ${(e as Error).message}`);
    return 1;
  } finally {
    title('Cleaning up');
    await host?.stop();
    await registry?.stop();
    await fs.rm(work, { recursive: true, force: true });
    await host?.assertClean();
    console.log(indent('test host and registry stopped; no process, mount, cgroup or temp file left'));
  }
}

process.exitCode = await main();
