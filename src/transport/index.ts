/** Opening an image source for a reference; transports load lazily. */
import type { ImageReference } from '../image/reference.ts';
import { parsePlatformOption } from './resolve.ts';
import type { ImageSource, SourceOptions } from './types.ts';

export async function openImageSource(ref: ImageReference, options: SourceOptions = {}): Promise<ImageSource> {
  const platform = options.platform === undefined ? undefined : parsePlatformOption(options.platform);
  switch (ref.transport) {
    case 'docker': {
      const { DockerImageSource } = await import('./docker/docker_image_src.ts');
      return DockerImageSource.open(ref, options, platform ? { platform } : {});
    }
    case 'short-name': {
      const { openShortName } = await import('./docker/short_name.ts');
      return openShortName(ref, options, platform);
    }
    case 'oci': {
      const { OciImageSource } = await import('./oci/oci_image_src.ts');
      return new OciImageSource(ref, platform);
    }
    case 'oci-archive': {
      const { OciArchiveImageSource } = await import('./oci-archive/oci_archive_src.ts');
      return OciArchiveImageSource.open(ref, platform);
    }
    case 'docker-archive': {
      const { DockerArchiveImageSource } = await import('./docker-archive/docker_archive_src.ts');
      return DockerArchiveImageSource.open(ref, platform);
    }
  }
}
