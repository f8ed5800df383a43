// Which images kt deploys. Each setting comes from the first place that has it:
//   flag (--image)  >  environment  >  config file (~/.kt/config.yaml or $KT_CONFIG)  >  default
// A full reference (--image, $KT_SHADOW_IMAGE / $KT_ROUTER_IMAGE, shadowImage / routerImage) wins
// over registry and tag at its own level and below. When a level gives only a registry or a tag
// ($KT_IMAGE_REGISTRY, $KT_IMAGE_TAG, registry:, tag:), the image is <registry>/<name>:<tag>, each
// part from the first level that has it, else ghcr.io/kt-dev and the plugin's own version.
import { DEFAULT_IMAGE_REGISTRY, IMAGE_NAME } from '../../contract/index.ts';
import { loadConfig, type KtConfig } from './config-file.ts';
import { VERSION } from './version.ts';

export type ImageKind = keyof typeof IMAGE_NAME;

export interface ResolvedImage {
  ref: string;
  /** Where it came from, for --version: "--image", "$KT_SHADOW_IMAGE", "config file", "default"... */
  from: string;
}

const ENV_IMAGE: Record<ImageKind, string> = { shadow: 'KT_SHADOW_IMAGE', router: 'KT_ROUTER_IMAGE' };
const FILE_IMAGE: Record<ImageKind, keyof KtConfig> = { shadow: 'shadowImage', router: 'routerImage' };

const set = (v: string | undefined): string | undefined => (v && v.trim() !== '' ? v.trim() : undefined);

export function resolveImage(kind: ImageKind, flag: string | undefined, env: NodeJS.ProcessEnv, file: KtConfig, flagName = '--image'): ResolvedImage {
  if (set(flag)) return { ref: set(flag)!, from: flagName };
  const levels = [
    { from: 'environment', image: set(env[ENV_IMAGE[kind]]), imageFrom: `$${ENV_IMAGE[kind]}`, registry: set(env.KT_IMAGE_REGISTRY), tag: set(env.KT_IMAGE_TAG) },
    { from: 'config file', image: set(file[FILE_IMAGE[kind]]), imageFrom: `config file ${FILE_IMAGE[kind]}`, registry: set(file.registry), tag: set(file.tag) },
  ];
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i]!;
    if (l.image) return { ref: l.image, from: l.imageFrom };
    if (l.registry || l.tag) {
      const below = levels.slice(i);
      const registry = (below.find((x) => x.registry)?.registry ?? DEFAULT_IMAGE_REGISTRY).replace(/\/+$/, '');
      const tag = (below.find((x) => x.tag)?.tag ?? VERSION).replace(/^:/, '');
      const parts = [
        below.find((x) => x.registry) ? `registry from ${below.find((x) => x.registry)!.from}` : '',
        below.find((x) => x.tag) ? `tag from ${below.find((x) => x.tag)!.from}` : '',
      ].filter((x) => x);
      return { ref: `${registry}/${IMAGE_NAME[kind]}:${tag}`, from: parts.join(', ') };
    }
  }
  return { ref: `${DEFAULT_IMAGE_REGISTRY}/${IMAGE_NAME[kind]}:${VERSION}`, from: 'default' };
}

let warned = false;

/** The image to deploy. `file` defaults to the user's config file (read on each call). */
export function imageRef(kind: ImageKind, flag?: string, env = process.env, file?: KtConfig): string {
  if (set(flag)) return set(flag)!;
  let config = file;
  if (!config) {
    const loaded = loadConfig(env);
    if (loaded.unknown.length > 0 && !warned) {
      warned = true;
      process.stderr.write(`kt: ignoring unknown keys in ${loaded.path}: ${loaded.unknown.join(', ')} (known: registry, tag, shadowImage, routerImage)\n`);
    }
    config = loaded.config;
  }
  return resolveImage(kind, flag, env, config).ref;
}

/** The lines --version prints after the version: the images it would deploy, and why. */
export function imageLines(flags: { image?: string | undefined; routerImage?: string | undefined }, env = process.env): string {
  let loaded;
  try {
    loaded = loadConfig(env);
  } catch (e) {
    return `config file: ${(e as Error).message}\n`;
  }
  const shadow = resolveImage('shadow', flags.image, env, loaded.config);
  const router = resolveImage('router', flags.routerImage, env, loaded.config, '--router-image');
  const cfg = loaded.path === '' ? 'none (KT_CONFIG is empty)' : `${loaded.path}${loaded.found ? '' : ' (not found)'}${loaded.unknown.length ? ` (unknown keys ignored: ${loaded.unknown.join(', ')})` : ''}`;
  return [
    `shadow image: ${shadow.ref} (${shadow.from})`,
    `router image: ${router.ref} (${router.from})`,
    `config file:  ${cfg}`,
    '',
  ].join('\n');
}
