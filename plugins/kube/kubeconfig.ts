// Loads kubeconfig exactly like kubectl: --kubeconfig, else every file in KUBECONFIG merged
// first-wins (a name defined twice keeps its first definition; the first current-context set
// wins), else ~/.kube/config; then --context and -n/--namespace. Relative file references are
// resolved against the file that names them. client-node cannot do this itself: it throws on a
// name that appears twice.
import { KubeConfig, type ApiConstructor, type ApiType } from '@kubernetes/client-node';
import { load, dump } from 'js-yaml';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { wrapApiClient } from './api-errors.ts';
import { UserError } from '../cli/errors.ts';

export interface KubeOptions {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

export interface LoadedKube {
  kc: KubeConfig;
  context: string;
  namespace: string;
  server: string;
  /** The namespace the context names, if it names one. */
  contextNamespace: string | undefined;
}

type Named = { name: string } & Record<string, unknown>;
interface RawConfig {
  clusters?: Named[] | null;
  users?: Named[] | null;
  contexts?: Named[] | null;
  'current-context'?: string;
}

const FILE_FIELDS: Record<string, string[]> = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'tokenFile'],
};

function absolutize(entry: Named, key: 'cluster' | 'user', base: string): Named {
  const inner = entry[key];
  if (!inner || typeof inner !== 'object') return entry;
  const copy: Record<string, unknown> = { ...(inner as Record<string, unknown>) };
  for (const f of FILE_FIELDS[key] ?? []) {
    const v = copy[f];
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) copy[f] = resolve(base, v);
  }
  return { ...entry, [key]: copy };
}

/** The files kubectl would read, in precedence order. */
export function kubeconfigFiles(explicit: string | undefined, env = process.env): string[] {
  if (explicit) return [explicit];
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (list.length > 0) return list;
  return [join(homedir(), '.kube', 'config')];
}

/** Merges raw kubeconfig documents first-wins, as kubectl does. Exported for tests. */
export function mergeFirstWins(docs: { raw: RawConfig; dir: string }[]): RawConfig {
  const out: { clusters: Named[]; users: Named[]; contexts: Named[]; 'current-context'?: string } = { clusters: [], users: [], contexts: [] };
  const seen = { clusters: new Set<string>(), users: new Set<string>(), contexts: new Set<string>() };
  for (const { raw, dir } of docs) {
    for (const c of raw.clusters ?? []) {
      if (seen.clusters.has(c.name)) continue;
      seen.clusters.add(c.name);
      out.clusters.push(absolutize(c, 'cluster', dir));
    }
    for (const u of raw.users ?? []) {
      if (seen.users.has(u.name)) continue;
      seen.users.add(u.name);
      out.users.push(absolutize(u, 'user', dir));
    }
    for (const x of raw.contexts ?? []) {
      if (seen.contexts.has(x.name)) continue;
      seen.contexts.add(x.name);
      out.contexts.push(x);
    }
    if (!out['current-context'] && raw['current-context']) out['current-context'] = raw['current-context'];
  }
  return out;
}

export function loadKube(opts: KubeOptions, env = process.env): LoadedKube {
  const files = kubeconfigFiles(opts.kubeconfig, env);
  const docs: { raw: RawConfig; dir: string }[] = [];
  for (const f of files) {
    if (!existsSync(f)) {
      // kubectl ignores missing files in KUBECONFIG but not an explicit --kubeconfig.
      if (opts.kubeconfig) throw new UserError(`kubeconfig file ${f} does not exist.`);
      continue;
    }
    let raw: unknown;
    try {
      raw = load(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new UserError(`kubeconfig file ${f} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    docs.push({ raw: (raw ?? {}) as RawConfig, dir: dirname(resolve(f)) });
  }
  if (docs.length === 0) throw new UserError(`no kubeconfig found (looked at ${files.join(', ')}); pass --kubeconfig or set KUBECONFIG.`);
  const merged = mergeFirstWins(docs);
  const kc = new KubeConfig();
  kc.loadFromString(dump({ apiVersion: 'v1', kind: 'Config', ...merged }));

  const context = opts.context ?? merged['current-context'] ?? '';
  if (!context) throw new UserError('no current context in the kubeconfig; pass --context.');
  if (!kc.getContextObject(context)) {
    const names = kc.getContexts().map((c) => c.name).join(', ');
    throw new UserError(`context "${context}" is not in the kubeconfig (it has: ${names || 'none'}).`);
  }
  kc.setCurrentContext(context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new UserError(`context "${context}" names a cluster that is not in the kubeconfig.`);
  const contextNamespace = kc.getContextObject(context)?.namespace;
  const namespace = opts.namespace ?? contextNamespace ?? 'default';
  // Every API client made from this config, wherever it is made, fails with one sentence.
  const make = kc.makeApiClient.bind(kc);
  const ctx = { server: cluster.server, contextNamespace: contextNamespace ?? 'default' };
  kc.makeApiClient = <T extends ApiType>(type: ApiConstructor<T>): T => wrapApiClient(make(type), ctx);
  return { kc, context, namespace, server: cluster.server, contextNamespace };
}
