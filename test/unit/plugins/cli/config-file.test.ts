// The kt config file and the precedence of image settings: flag > environment > config file >
// built-in default.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { configPath, loadConfig, parseConfig } from '../../../../plugins/cli/config-file.ts';
import { imageLines, imageRef, resolveImage } from '../../../../plugins/cli/images.ts';
import { VERSION } from '../../../../plugins/cli/version.ts';

const dir = mkdtempSync(join(tmpdir(), 'kt-config-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string): string => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
/** An environment with a home of its own, so the machine's ~/.kt/config.yaml never counts. */
const home = mkdtempSync(join(dir, 'home-'));
const env = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({ HOME: home, ...extra });

describe('config file', () => {
  it('lives at ~/.kt/config.yaml, or where $KT_CONFIG says', () => {
    expect(configPath({ HOME: '/home/u' })).toBe(join('/home/u', '.kt', 'config.yaml'));
    expect(configPath({ HOME: '/home/u', KT_CONFIG: '/etc/kt.yaml' })).toBe('/etc/kt.yaml');
  });

  it('reads the four keys; numbers become strings; unknown keys are reported, not fatal', () => {
    expect(parseConfig('registry: r.example/team\ntag: 1.2\nshadowImage: s:1\nrouterImage: r:1\ncolour: blue\n', 'f')).toEqual({
      config: { registry: 'r.example/team', tag: '1.2', shadowImage: 's:1', routerImage: 'r:1' },
      unknown: ['colour'],
    });
    expect(parseConfig('', 'f')).toEqual({ config: {}, unknown: [] });
    expect(parseConfig('# nothing\n', 'f')).toEqual({ config: {}, unknown: [] });
    expect(parseConfig('tag:\n', 'f')).toEqual({ config: {}, unknown: [] });
  });

  it('refuses what it cannot use, naming the file and the key', () => {
    expect(() => parseConfig('registry: [a, b]\n', '/x/config.yaml')).toThrow('the kt config file /x/config.yaml: registry must be a string');
    expect(() => parseConfig('- a\n', '/x/config.yaml')).toThrow('must be a mapping of registry, tag, shadowImage, routerImage');
    expect(() => parseConfig('registry: [\n', '/x/config.yaml')).toThrow('/x/config.yaml is not valid YAML');
    expect(() => parseConfig('tag: a b\n', '/x/config.yaml')).toThrow('tag must not contain spaces');
  });

  it('a missing default file is no configuration; a missing $KT_CONFIG file is an error; an empty KT_CONFIG means none', () => {
    expect(loadConfig(env())).toMatchObject({ found: false, config: {} });
    expect(() => loadConfig(env({ KT_CONFIG: join(dir, 'absent.yaml') }))).toThrow(`KT_CONFIG names ${join(dir, 'absent.yaml')}, which does not exist.`);
    expect(loadConfig(env({ KT_CONFIG: '' }))).toMatchObject({ path: '', found: false, config: {} });
    const p = file('c.yaml', 'registry: reg.example\n');
    expect(loadConfig(env({ KT_CONFIG: p }))).toEqual({ path: p, found: true, config: { registry: 'reg.example' }, unknown: [] });
  });
});

describe('image precedence: flag > environment > config file > default', () => {
  const d = (kind: 'shadow' | 'router'): string => `ghcr.io/kt-dev/kt-${kind}:${VERSION}`;

  it('defaults to ghcr.io/kt-dev/<name>:<version>', () => {
    expect(resolveImage('shadow', undefined, {}, {})).toEqual({ ref: d('shadow'), from: 'default' });
    expect(resolveImage('router', undefined, {}, {})).toEqual({ ref: d('router'), from: 'default' });
  });

  it('the config file gives registry, tag or a full reference', () => {
    expect(resolveImage('shadow', undefined, {}, { registry: 'reg.example/team/' }).ref).toBe(`reg.example/team/kt-shadow:${VERSION}`);
    expect(resolveImage('router', undefined, {}, { tag: 'dev' }).ref).toBe('ghcr.io/kt-dev/kt-router:dev');
    expect(resolveImage('shadow', undefined, {}, { registry: 'r', tag: '9' }).ref).toBe('r/kt-shadow:9');
    expect(resolveImage('shadow', undefined, {}, { registry: 'r', shadowImage: 'x/s:1' })).toEqual({ ref: 'x/s:1', from: 'config file shadowImage' });
    expect(resolveImage('router', undefined, {}, { registry: 'r', shadowImage: 'x/s:1' }).ref).toBe(`r/kt-router:${VERSION}`);
  });

  it('the environment beats the config file, setting by setting', () => {
    const file = { registry: 'file.reg', tag: 'file-tag', shadowImage: 'file/shadow:1' };
    expect(resolveImage('shadow', undefined, { KT_SHADOW_IMAGE: 'env/shadow:2' }, file)).toEqual({ ref: 'env/shadow:2', from: '$KT_SHADOW_IMAGE' });
    // A registry from the environment outranks the file's full reference; the tag still comes from the file.
    expect(resolveImage('shadow', undefined, { KT_IMAGE_REGISTRY: 'env.reg' }, file)).toEqual({ ref: 'env.reg/kt-shadow:file-tag', from: 'registry from environment, tag from config file' });
    expect(resolveImage('router', undefined, { KT_IMAGE_TAG: 'env-tag' }, file).ref).toBe('file.reg/kt-router:env-tag');
    expect(resolveImage('router', undefined, { KT_ROUTER_IMAGE: 'env/router:3', KT_IMAGE_REGISTRY: 'env.reg' }, file).ref).toBe('env/router:3');
    // Empty variables are unset.
    expect(resolveImage('shadow', undefined, { KT_SHADOW_IMAGE: '', KT_IMAGE_REGISTRY: ' ' }, file).ref).toBe('file/shadow:1');
  });

  it('the flag beats everything', () => {
    const all = { KT_SHADOW_IMAGE: 'env/s:1', KT_IMAGE_REGISTRY: 'env.reg', KT_IMAGE_TAG: 't' };
    expect(resolveImage('shadow', 'flag/s:0', all, { shadowImage: 'file/s:1' })).toEqual({ ref: 'flag/s:0', from: '--image' });
  });

  it('imageRef(kind, flag?, env?) keeps working for its callers, reading the config file named by env', () => {
    expect(imageRef('shadow', 'flag/s:0')).toBe('flag/s:0');
    expect(imageRef('shadow', undefined, env())).toBe(d('shadow'));
    expect(imageRef('shadow', undefined, env({ KT_IMAGE_REGISTRY: 'reg.example' }))).toBe(`reg.example/kt-shadow:${VERSION}`);
    const p = file('img.yaml', 'registry: file.reg\ntag: ft\n');
    expect(imageRef('shadow', undefined, env({ KT_CONFIG: p }))).toBe('file.reg/kt-shadow:ft');
    expect(imageRef('router', undefined, env({ KT_CONFIG: p, KT_IMAGE_TAG: 'et' }))).toBe('file.reg/kt-router:et');
    expect(imageRef('shadow', undefined, env({ KT_CONFIG: p }), { registry: 'given' })).toBe(`given/kt-shadow:${VERSION}`);
    expect(() => imageRef('shadow', undefined, env({ KT_CONFIG: file('bad.yaml', 'tag: [1]\n') }))).toThrow('tag must be a string');
  });

  it('--version lines name the images and where each came from', () => {
    const p = file('v.yaml', 'routerImage: mine/router:7\n');
    expect(imageLines({ image: 'flag/s:0' }, env({ KT_CONFIG: p }))).toBe([
      'shadow image: flag/s:0 (--image)',
      'router image: mine/router:7 (config file routerImage)',
      `config file:  ${p}`,
      '',
    ].join('\n'));
    expect(imageLines({}, env())).toContain(`config file:  ${join(home, '.kt', 'config.yaml')} (not found)`);
    expect(imageLines({}, env({ KT_CONFIG: join(dir, 'nope.yaml') }))).toContain('KT_CONFIG names');
  });
});
