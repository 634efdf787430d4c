/** Opening an image source for a reference; transports load lazily. */
import type { ImageReference } from '../image/reference.ts';
import type { ImageSource, SourceOptions } from './types.ts';

export async function openImageSource(ref: ImageReference, options: SourceOptions): Promise<ImageSource> {
  switch (ref.transport) {
    case 'docker': {
      const { DockerImageSource } = await import('./docker/docker_image_src.ts');
      return new DockerImageSource(ref, options);
    }
    case 'oci': {
      const { OciImageSource } = await import('./oci/oci_image_src.ts');
      return new OciImageSource(ref);
    }
  }
}
