import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadRegistryTls } from '../../src/transport/docker/certs_d.ts';

const PEM = (what: string) => `-----BEGIN ${what}-----\nAAAA\n-----END ${what}-----\n`;

describe('certs.d (containers-certs.d(5))', () => {
  let dir: string;
  let roots: string[];
  before(async () => {
    dir = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-certsd-'));
    roots = [path.join(dir, 'containers'), path.join(dir, 'docker')];
    await fs.mkdir(path.join(roots[0]!, 'reg.example:5000'), { recursive: true });
    await fs.writeFile(path.join(roots[0]!, 'reg.example:5000', 'ca.crt'), PEM('CERTIFICATE'));
    await fs.writeFile(path.join(roots[0]!, 'reg.example:5000', 'client.cert'), PEM('CERTIFICATE'));
    await fs.writeFile(path.join(roots[0]!, 'reg.example:5000', 'client.key'), PEM('PRIVATE KEY'));
    await fs.mkdir(path.join(roots[1]!, 'reg.example:5000'), { recursive: true });
    await fs.writeFile(path.join(roots[1]!, 'reg.example:5000', 'extra.crt'), PEM('CERTIFICATE'));
    await fs.mkdir(path.join(roots[0]!, 'half'), { recursive: true });
    await fs.writeFile(path.join(roots[0]!, 'half', 'only.key'), PEM('PRIVATE KEY'));
    await fs.mkdir(path.join(roots[0]!, 'notpem'), { recursive: true });
    await fs.writeFile(path.join(roots[0]!, 'notpem', 'ca.crt'), 'hello');
  });
  after(() => fs.rm(dir, { recursive: true, force: true }));

  it('reads CAs from every root and the client pair, naming where they came from', async () => {
    const tls = await loadRegistryTls('reg.example:5000', undefined, roots);
    assert.equal(tls?.ca.length, 2);
    assert.match(tls!.cert!, /BEGIN CERTIFICATE/);
    assert.match(tls!.key!, /BEGIN PRIVATE KEY/);
    assert.deepEqual(tls!.from, roots.map((r) => path.join(r, 'reg.example:5000')));
  });
  it('nothing for a registry without a directory, or a host name that is a path', async () => {
    assert.equal(await loadRegistryTls('other.example', undefined, roots), undefined);
    assert.equal(await loadRegistryTls('../containers', undefined, roots), undefined);
  });
  it('--cert-dir replaces the roots and must exist', async () => {
    const tls = await loadRegistryTls('anything', path.join(roots[1]!, 'reg.example:5000'), roots);
    assert.equal(tls?.ca.length, 1);
    await assert.rejects(loadRegistryTls('x', path.join(dir, 'missing'), roots), /--cert-dir .*: no such directory/);
  });
  it('refuses a key without its certificate, and files that are not PEM', async () => {
    await assert.rejects(loadRegistryTls('half', undefined, roots), (e: Error & { code?: string }) => e.code === 'CONFIG_INVALID' && /only\.key: key without its client certificate only\.cert/.test(e.message));
    await assert.rejects(loadRegistryTls('notpem', undefined, roots), /ca\.crt: not PEM/);
  });
});
