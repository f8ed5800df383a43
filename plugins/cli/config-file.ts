// The user's kt configuration file: ~/.kt/config.yaml, or the file $KT_CONFIG names. It holds
// defaults below flags and environment variables:
//
//   registry: registry.example.com/team     # images are <registry>/kt-shadow:<tag>, kt-router:<tag>
//   tag: 0.1.0                              # default: the plugin's own version
//   shadowImage: registry.example.com/kt-shadow:patched   # a full reference beats registry/tag
//   routerImage: registry.example.com/kt-router:patched
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { UserError } from './errors.ts';

export interface KtConfig {
  registry?: string;
  tag?: string;
  shadowImage?: string;
  routerImage?: string;
}

export const CONFIG_KEYS = ['registry', 'tag', 'shadowImage', 'routerImage'] as const satisfies readonly (keyof KtConfig)[];

export interface LoadedConfig {
  path: string;
  found: boolean;
  config: KtConfig;
  /** Keys the file has that kt does not know (a typo, or a newer kt's). */
  unknown: string[];
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.KT_CONFIG || join(env.HOME || homedir(), '.kt', 'config.yaml');
}

/** Validates a config file's text; errors name the file and the key. */
export function parseConfig(text: string, path: string): { config: KtConfig; unknown: string[] } {
  // Nothing but comments and blank lines: an empty configuration (js-yaml calls it no document).
  if (!/^[ \t]*[^#\s]/m.test(text)) return { config: {}, unknown: [] };
  let doc: unknown;
  try {
    doc = load(text);
  } catch (e) {
    throw new UserError(`the kt config file ${path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
  }
  if (doc === null || doc === undefined) return { config: {}, unknown: [] };
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new UserError(`the kt config file ${path} must be a mapping of ${CONFIG_KEYS.join(', ')}.`);
  const config: KtConfig = {};
  const unknown: string[] = [];
  for (const [k, v] of Object.entries(doc as Record<string, unknown>)) {
    if (!(CONFIG_KEYS as readonly string[]).includes(k)) {
      unknown.push(k);
      continue;
    }
    if (v === null || v === undefined || v === '') continue;
    if (typeof v !== 'string' && typeof v !== 'number') throw new UserError(`the kt config file ${path}: ${k} must be a string, not ${JSON.stringify(v)}.`);
    const s = String(v).trim();
    if (/\s/.test(s)) throw new UserError(`the kt config file ${path}: ${k} must not contain spaces ("${s}").`);
    config[k as keyof KtConfig] = s;
  }
  return { config, unknown };
}

/**
 * Reads the config file. A missing ~/.kt/config.yaml is an empty configuration; a missing file
 * named by $KT_CONFIG is an error (it was asked for). KT_CONFIG set to the empty string means none.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): LoadedConfig {
  const path = configPath(env);
  if (env.KT_CONFIG === '') return { path: '', found: false, config: {}, unknown: [] };
  if (!existsSync(path)) {
    if (env.KT_CONFIG) throw new UserError(`KT_CONFIG names ${path}, which does not exist.`);
    return { path, found: false, config: {}, unknown: [] };
  }
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new UserError(`cannot read the kt config file ${path}: ${(e as Error).message}`);
  }
  return { path, found: true, ...parseConfig(text, path) };
}
