/**
 * The crash trials' images: hello-world (a small busybox service that starts
 * at once) plus what makes every deployment step do something to kill
 * midway: two host files (renamed per container, so two containers of one
 * image do not collide), a tmpfiles.template and two versions with their
 * own digests. The pull and load images have layers of their own (random
 * bytes, so no other image shares them), big enough that a random kill
 * lands mid-import.
 */
import { randomBytes } from 'node:crypto';
import type { FixtureFile, FixtureImageSpec } from '../fixtures/oci-image.ts';
import { helloWorldImage } from '../fixtures/system-images.ts';

const MANIFEST = {
  version: '1.0',
  defaultValues: { PORT: '8081', RECEIVER: 'World' },
  renameFiles: {
    '/etc/berth-crash/app.conf': '/etc/berth-crash/${NAME}.conf',
    '/usr/local/share/berth-crash/app.txt': '/usr/local/share/berth-crash/${NAME}.txt',
  },
};

/** Host paths a container NAME of crashAppImage() installs (for snapshots). */
export function crashHostFiles(name: string): string[] {
  return [`/etc/berth-crash/${name}.conf`, `/usr/local/share/berth-crash/${name}.txt`];
}

export function crashAppImage(version: string): FixtureImageSpec {
  const hello = helloWorldImage();
  const files: FixtureFile[] = (hello.layers?.[0] ?? []).filter((f) => f.path !== 'exports/manifest.json');
  files.push(
    { path: 'exports/manifest.json', content: `${JSON.stringify(MANIFEST, null, 2)}\n` },
    { path: 'exports/tmpfiles.template', content: 'd ${RUN_DIRECTORY}/berth-crash-${NAME} 0755 - - - -\n' },
    { path: 'exports/hostfs/etc/berth-crash/app.conf', content: `version=${version}\n` },
    { path: 'exports/hostfs/usr/local/share/berth-crash/app.txt', content: `crash fixture ${version}\n` },
    { path: 'etc/crash-version', content: `${version}\n` },
  );
  return { ...hello, layers: [files] };
}

/** An image only `berth pull` trials use: three layers of random bytes. */
export function crashPullImage(): FixtureImageSpec {
  return randomImage(3, 16);
}

/** The images of the `berth load` and `berth save` trials (a bundle of two): two layers each, of their own. */
export function crashLoadImage(): FixtureImageSpec {
  return randomImage(2, 8);
}

function randomImage(layers: number, files: number): FixtureImageSpec {
  const blob = (n: number): FixtureFile[] => Array.from({ length: files }, (_, i) => ({ path: `data/${n}/${i}.bin`, content: randomBytes(128 * 1024) }));
  return { busybox: false, layers: Array.from({ length: layers }, (_, n) => blob(n + 1)), config: { Cmd: ['/bin/true'] } };
}
