/**
 * Private CAs and client certificates (containers-certs.d(5)) against
 * Debian's docker-registry serving TLS with a test CA: without the CA a pull
 * fails naming certs.d first; with it in /etc/containers/certs.d/HOST:PORT
 * (inside the test host, whose /etc is a throwaway overlay) or in --cert-dir
 * it works; a registry that requires a client certificate takes the pair
 * from certs.d; a half pair is refused with one line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { makeTestCa, type TestCa } from '../fixtures/test-ca.ts';
import { BERTH } from '../harness/berth-env.ts';
import { TestRegistry } from '../harness/registry.ts';
import { TestHost } from '../harness/test-host.ts';

describe('registries with a private CA (certs.d)', () => {
  let ca: TestCa;
  let work: string;
  let policy: string;
  let host: TestHost;
  let plain: TestRegistry; // TLS with the test CA
  let mutual: TestRegistry; // TLS, client certificate required

  const pull = (root: string, ...args: string[]) => host.exec(process.execPath, [BERTH, '--root', path.join(work, root), 'pull', '--policy', policy, ...args], { timeoutMs: 120_000 });
  const certsD = (registry: TestRegistry) => `/etc/containers/certs.d/${registry.host}`;
  const inHost = async (script: string) => {
    const r = await host.exec('sh', ['-euc', script]);
    assert.equal(r.code, 0, r.stderr);
  };

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-certs-'));
    policy = path.join(work, 'policy.json');
    await fs.writeFile(policy, JSON.stringify({ default: [{ type: 'insecureAcceptAnything' }] }));
    ca = await makeTestCa(path.join(work, 'ca'));
    [host, plain, mutual] = await Promise.all([
      TestHost.start(),
      TestRegistry.start({ tls: { cert: ca.serverCert, key: ca.serverKey } }),
      TestRegistry.start({ tls: { cert: ca.serverCert, key: ca.serverKey, clientCa: ca.caCert } }),
    ]);
    const image = await buildImage(path.join(work, 'layout'), 'small', { layers: [[{ path: 'hello.txt', content: 'hello\n' }]], config: { Cmd: ['/bin/true'] } });
    await pushImage(image, plain.host, 'tls/small', '1');
    // The mutual registry: skopeo presents the client pair (its --dest-cert-dir takes *.cert/*.key like certs.d).
    const skopeoCerts = path.join(work, 'skopeo-certs');
    await fs.mkdir(skopeoCerts);
    await fs.copyFile(ca.caCert, path.join(skopeoCerts, 'ca.crt'));
    await fs.copyFile(ca.clientCert, path.join(skopeoCerts, 'client.cert'));
    await fs.copyFile(ca.clientKey, path.join(skopeoCerts, 'client.key'));
    const { execFile } = await import('node:child_process');
    await new Promise<void>((resolve, reject) =>
      execFile('skopeo', ['copy', '--insecure-policy', '--dest-cert-dir', skopeoCerts, `oci:${image.layout}:${image.tag}`, `docker://${mutual.host}/tls/small:1`], { timeout: 60_000 }, (e, _o, stderr) => (e ? reject(new Error(String(stderr))) : resolve())),
    );
  });

  after(async () => {
    await host?.stop();
    await plain?.stop();
    await mutual?.stop();
    await host?.assertClean();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  it('without the CA: one line naming certs.d before --tls-verify=false, exit 4', async () => {
    const r = await pull('none', `docker://${plain.host}/tls/small:1`);
    assert.equal(r.code, 4, r.stderr);
    const line = r.stderr.trim().split('\n').pop()!;
    assert.match(line, /^berth: error: .*TLS failed/);
    assert.match(line, new RegExp(`put the registry's CA certificate in /etc/containers/certs\\.d/${plain.host.replace('.', '\\.')}/ca\\.crt \\(or --cert-dir DIR\\); for a trusted local registry without TLS, --tls-verify=false`));
  });

  it('with the CA in --cert-dir, or in /etc/containers/certs.d/HOST:PORT: pulls', async () => {
    const dir = path.join(work, 'cert-dir');
    await fs.mkdir(dir);
    await fs.copyFile(ca.caCert, path.join(dir, 'ca.crt'));
    const viaDir = await pull('via-dir', '--cert-dir', dir, `docker://${plain.host}/tls/small:1`);
    assert.equal(viaDir.code, 0, viaDir.stderr);

    await inHost(`mkdir -p ${certsD(plain)} && cp ${ca.caCert} ${certsD(plain)}/ca.crt`);
    const viaCertsD = await pull('via-certs-d', `docker://${plain.host}/tls/small:1`);
    assert.equal(viaCertsD.code, 0, viaCertsD.stderr);
  });

  it('a wrong CA is still refused, and the hint names the directory it came from', async () => {
    const dir = path.join(work, 'wrong-ca');
    await fs.mkdir(dir);
    await fs.copyFile(ca.otherCaCert, path.join(dir, 'ca.crt'));
    const r = await pull('wrong', '--cert-dir', dir, `docker://${plain.host}/tls/small:1`);
    assert.equal(r.code, 4, r.stderr);
    assert.match(r.stderr, new RegExp(`the CA certificates in ${dir} do not verify it`));
  });

  it('a registry requiring a client certificate: refused without one, pulls with the pair in certs.d', async () => {
    await inHost(`mkdir -p ${certsD(mutual)} && cp ${ca.caCert} ${certsD(mutual)}/ca.crt`);
    const without = await pull('mutual-none', `docker://${mutual.host}/tls/small:1`);
    assert.notEqual(without.code, 0, 'no client certificate, no pull');
    assert.match(without.stderr, /^berth: error: /m);
    await inHost(`cp ${ca.clientCert} ${certsD(mutual)}/client.cert && cp ${ca.clientKey} ${certsD(mutual)}/client.key`);
    const withPair = await pull('mutual', `docker://${mutual.host}/tls/small:1`);
    assert.equal(withPair.code, 0, withPair.stderr);
  });

  it('a client certificate without its key is refused with one line, before any request', async () => {
    const dir = path.join(work, 'half-pair');
    await fs.mkdir(dir);
    await fs.copyFile(ca.clientCert, path.join(dir, 'client.cert'));
    const r = await pull('half', '--cert-dir', dir, `docker://${plain.host}/tls/small:1`);
    assert.equal(r.code, 2, r.stderr);
    assert.equal(r.stderr.trim(), `berth: error: ${dir}/client.cert: client certificate without its key client.key (see containers-certs.d(5): *.crt CA certificates, *.cert with a matching *.key)`);
  });
});
