// Which images kt deploys: --image beats $KT_SHADOW_IMAGE beats $KT_IMAGE_REGISTRY/kt-shadow:VERSION.
import { DEFAULT_IMAGE_REGISTRY, IMAGE_NAME } from '../../contract/index.ts';
import { VERSION } from './version.ts';

export function imageRef(kind: keyof typeof IMAGE_NAME, flag?: string, env = process.env): string {
  if (flag) return flag;
  const specific = kind === 'shadow' ? env.KT_SHADOW_IMAGE : env.KT_ROUTER_IMAGE;
  if (specific) return specific;
  const registry = (env.KT_IMAGE_REGISTRY ?? DEFAULT_IMAGE_REGISTRY).replace(/\/$/, '');
  return `${registry}/${IMAGE_NAME[kind]}:${VERSION}`;
}
