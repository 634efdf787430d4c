/**
 * Where things live under ROOT/store. One place, so that every module names
 * the same directories.
 *
 *   objects/XX/REST[.xattrs]  file objects (objects.ts)
 *   layers/ALG-HEX            layer records by diff_id (layer-record.ts)
 *   images/ALG-HEX            image records by manifest digest (images.ts)
 *   refs/NAME                 references (images.ts)
 *   tmp/PID.WHAT.RANDOM/      staging, same filesystem as the rest (fsutil.ts)
 */
import { join } from 'node:path';

export interface StoreDirs {
  dir: string;
  objects: string;
  layers: string;
  images: string;
  refs: string;
  tmp: string;
}

export function storeDirs(dir: string): StoreDirs {
  return {
    dir,
    objects: join(dir, 'objects'),
    layers: join(dir, 'layers'),
    images: join(dir, 'images'),
    refs: join(dir, 'refs'),
    tmp: join(dir, 'tmp'),
  };
}
