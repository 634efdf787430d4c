/**
 * Sigstore signatures travel on the shared store, end to end: a real
 * docker-registry (its access log is the record of what was fetched), an image
 * pushed there with a keyed cosign signature in cosign's layout (the tag
 * sha256-HEX.sig), `berth publish add` onto a plain directory as the share
 * with the publisher's registries.d saying use-sigstore-attachments, and one
 * test host whose policy requires sigstoreSigned with the cosign key and whose
 * registries.d does NOT look for attachments, so the share is the only place
 * the signature can come from.
 *
 * Shown: the share's images/ALG-HEX/sigstore.json holds the signature; the
 * host installs from the share with no request to the registry; a policy
 * naming another key refuses it (exit 8, one line, nothing installed); a
 * damaged sigstore.json with shared-store-fallback=refuse is refused (exit 4,
 * one line naming the share).
 */
import assert from 'node:assert/strict';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { LONG_RUNNING_CMD } from '../../bench/big-image.ts';
import type { Digest } from '../../src/image/digest.ts';
import type { UntrustedCosignAttachment } from '../../src/image/sigstore.ts';
import { decodeSigstoreList } from '../../src/store/images.ts';
import { buildImage, pushImage } from '../fixtures/oci-image.ts';
import { cosignAttachment, makeKey } from '../fixtures/sigstore.ts';
import { pushCosignAttachments } from '../fixtures/sigstore-push.ts';
import { BERTH } from '../harness/berth-env.ts';
import { TestRegistry } from '../harness/registry.ts';
import { TestHost, type ExecResult } from '../harness/test-host.ts';

/** berth's error line: exactly one `berth: error: ` line, and it is the last line. */
function errorLine(stderr: string): string {
  const lines = stderr.trimEnd().split('\n');
  const errors = lines.filter((l) => l.startsWith('berth: error: '));
  assert.equal(errors.length, 1, `one error line: ${stderr}`);
  assert.equal(lines.at(-1), errors[0], `the error line is last: ${stderr}`);
  return errors[0]!;
}

describe('sigstore signatures on the shared store', () => {
  let work: string;
  let share: string;
  let registry: TestRegistry;
  let host: TestHost | undefined;
  let digest: string;
  let ref: string;
  let sigstoreJson: string;
  let attachment: UntrustedCosignAttachment;

  before(async () => {
    work = await fs.mkdtemp(path.join(os.tmpdir(), 'berth-share-sigstore-'));
    share = path.join(work, 'share');
    [registry, host] = await Promise.all([TestRegistry.start({ accessLog: true }), TestHost.start()]);
    const cosignKey = makeKey('ecdsa-p256');
    const strangerKey = makeKey('ecdsa-p256');
    await fs.writeFile(path.join(work, 'cosign.pub'), cosignKey.publicPem);
    await fs.writeFile(path.join(work, 'stranger.pub'), strangerKey.publicPem);

    const img = await buildImage(path.join(work, 'oci'), 'v1', { layers: [[{ path: 'etc/hello', content: 'signed hello\n' }]], config: { Cmd: LONG_RUNNING_CMD } });
    digest = await pushImage(img, registry.host, 'app', '1');
    ref = `docker://${registry.host}/app:1`;
    attachment = cosignAttachment({ manifestDigest: digest as Digest, reference: `${registry.host}/app`, key: cosignKey }).attachment;
    await pushCosignAttachments(registry.url, 'app', digest, [attachment]);
    sigstoreJson = path.join(share, 'images', digest.replace(':', '-'), 'sigstore.json');

    // Policies: the publisher's and the good host's require the cosign key; the "other" host's another key.
    const policy = (key: string) => JSON.stringify({ default: [{ type: 'reject' }], transports: { docker: { [`${registry.host}/app`]: [{ type: 'sigstoreSigned', keyPath: path.join(work, key), signedIdentity: { type: 'matchRepository' } }] } } });
    await fs.writeFile(path.join(work, 'policy.json'), policy('cosign.pub'));
    await fs.writeFile(path.join(work, 'policy-other.json'), policy('stranger.pub'));
    // The publisher looks for cosign attachments in the registry; the host does not (an empty registries.d).
    await fs.mkdir(path.join(work, 'publisher-registries.d'));
    await fs.writeFile(path.join(work, 'publisher-registries.d', 'sigstore.yaml'), 'default-docker:\n  use-sigstore-attachments: true\n');
    await fs.mkdir(path.join(work, 'host-registries.d'));
    await fs.mkdir(path.join(work, 'root'));
  });

  after(async () => {
    await host?.stop();
    await host?.assertClean().catch((e: unknown) => console.error(e));
    await registry?.stop();
    if (work) await fs.rm(work, { recursive: true, force: true });
  });

  /** berth on the test host: its own root, an empty registries.d, the share as $BERTH_SHARED_STORE. */
  function onHost(args: readonly string[], o: { policy?: string; env?: Record<string, string> } = {}): Promise<ExecResult> {
    const trust = ['install', 'update', 'pull'].includes(args[0]!) ? ['--policy', path.join(work, o.policy ?? 'policy.json'), '--registries.d', path.join(work, 'host-registries.d'), '--tls-verify=false'] : [];
    return host!.exec(process.execPath, [BERTH, '--root', path.join(work, 'root'), args[0]!, ...trust, ...args.slice(1)], { env: { BERTH_SHARED_STORE: share, ...o.env }, timeoutMs: 300_000 });
  }

  it('the publisher puts the cosign signature it pulled into images/ALG-HEX/sigstore.json', async () => {
    const r = await host!.exec(
      process.execPath,
      [BERTH, 'publish', 'add', '--share', share, '--policy', path.join(work, 'policy.json'), '--registries.d', path.join(work, 'publisher-registries.d'), '--tls-verify=false', '--json', ref],
      { timeoutMs: 300_000 },
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal((JSON.parse(r.stdout) as { digest: string }).digest, digest);
    const requests = await registry.requests();
    assert.ok(requests.some((l) => /^GET \/v2\/app\/manifests\/sha256-[0-9a-f]{64}\.sig 200$/.test(l)), `the publisher fetched the .sig tag: ${requests.join('; ')}`);
    // Exactly the signature pushed: its payload (the simple-signing claim over this digest) and signature.
    const onShare = decodeSigstoreList(await fs.readFile(sigstoreJson), 16);
    assert.equal(onShare.length, 1);
    const got = onShare[0] as UntrustedCosignAttachment;
    assert.equal(got.kind, 'cosign');
    assert.equal(got.signature, attachment.signature);
    assert.ok(got.payload.equals(attachment.payload));
  });

  it('a host requiring the cosign key installs from the share, asking the registry nothing', async () => {
    const before = (await registry.requests()).length;
    const r = await onHost(['install', '--no-start', '--name', 'app', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, /from shared store/);
    assert.deepEqual((await registry.requests()).slice(before), [], 'no request to the registry during the install');
    const info = JSON.parse(await fs.readFile(path.join(work, 'root', 'containers', 'app', 'info.json'), 'utf8')) as { manifestDigest: string; source?: { kind: string } };
    assert.equal(info.manifestDigest, digest);
    assert.equal(info.source?.kind, 'share');
    const un = await onHost(['uninstall', 'app']);
    assert.equal(un.code, 0, un.stderr);
  });

  it('a host requiring another cosign key refuses it: exit 8, one line, nothing installed', async () => {
    const before = (await registry.requests()).length;
    const r = await onHost(['install', '--no-start', '--name', 'other', ref], { policy: 'policy-other.json' });
    assert.equal(r.code, 8, r.stderr);
    assert.match(errorLine(r.stderr), /^berth: error: .*rejected.*does not verify with the policy's key/);
    assert.deepEqual((await registry.requests()).slice(before), [], "the share's verdict stands: no pull from the registry instead");
    const list = await onHost(['list', '--json']);
    assert.equal(list.code, 0, list.stderr);
    assert.equal(list.stdout.includes('"other"'), false, list.stdout);
    await assert.rejects(fs.access(path.join(work, 'root', 'containers', 'other')));
  });

  it('a damaged sigstore.json on the share is refused with shared-store-fallback=refuse: exit 4, one line naming the share', async () => {
    const good = await fs.readFile(sigstoreJson);
    await fs.writeFile(sigstoreJson, '{"not": "a signature list"');
    try {
      const before = (await registry.requests()).length;
      const r = await onHost(['install', '--no-start', '--name', 'tampered', ref], { env: { BERTH_SHARED_STORE_FALLBACK: 'refuse' } });
      assert.equal(r.code, 4, r.stderr);
      const line = errorLine(r.stderr);
      assert.ok(line.startsWith(`berth: error: shared store ${share} is unavailable for `), line);
      assert.match(line, /sigstore signatures .* are invalid/);
      assert.deepEqual((await registry.requests()).slice(before), [], 'refused without asking the registry');
      await assert.rejects(fs.access(path.join(work, 'root', 'containers', 'tampered')));
    } finally {
      await fs.writeFile(sigstoreJson, good);
    }
  });
});
