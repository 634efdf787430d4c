/**
 * signedIdentity semantics (containers-policy.json(5)): does the identity a
 * verified signature claims fit the image being pulled?
 */
import { transportOf } from '../transport/index.ts';
import type { ImageReference } from '../transport/reference.ts';
import { formatIdentity, imageIdentity, isNameOnly, parseDockerIdentity, refMatchesPrefix, type DockerIdentity } from './identity.ts';
import type { SignedIdentity } from './policy.ts';

/** undefined when `signed` is acceptable for `image` under `rule`; otherwise why not. */
export function identityMismatch(rule: SignedIdentity, image: ImageReference, signed: DockerIdentity): string | undefined {
  const claims = `claims identity ${formatIdentity(signed)}`;
  switch (rule.type) {
    case 'exactReference':
      if (!isNameOnly(signed) && formatIdentity(signed) === rule.dockerReference) return undefined;
      return `${claims}, the policy requires exactly ${rule.dockerReference}`;
    case 'exactRepository':
      if (signed.name === rule.dockerRepository) return undefined;
      return `${claims}, the policy requires repository ${rule.dockerRepository}`;
    default:
      break;
  }
  const registryImage = transportOf(image).trust?.identity(image);
  if (registryImage === undefined) {
    return `signedIdentity ${rule.type} needs a registry image; for ${image.transport}: images use exactReference or exactRepository`;
  }
  let intended = imageIdentity(registryImage);
  switch (rule.type) {
    case 'matchExact':
      if (!isNameOnly(intended) && !isNameOnly(signed) && formatIdentity(signed) === formatIdentity(intended)) return undefined;
      return `${claims}, the image is ${formatIdentity(intended)} (matchExact)`;
    case 'matchRepository':
      if (signed.name === intended.name) return undefined;
      return `${claims}, the image is in repository ${intended.name} (matchRepository)`;
    case 'remapIdentity': {
      const s = formatIdentity(intended);
      if (refMatchesPrefix(s, rule.prefix)) {
        try {
          intended = parseDockerIdentity(rule.signedPrefix + s.slice(rule.prefix.length));
        } catch (e) {
          return `remapping ${s} with prefix ${rule.signedPrefix} fails: ${(e as Error).message}`;
        }
      }
      break;
    }
    case 'matchRepoDigestOrExact':
      break;
  }
  // matchRepoDigestOrExact (also after a remap): a tag must match exactly; a digest pull accepts any identity in the repository.
  if (intended.tag !== undefined) {
    if (formatIdentity(signed) === formatIdentity(intended)) return undefined;
    return `${claims}, expected ${formatIdentity(intended)} (${rule.type})`;
  }
  if (intended.digest !== undefined && signed.name === intended.name) return undefined;
  return `${claims}, expected an identity in repository ${intended.name} (${rule.type})`;
}
