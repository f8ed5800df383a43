// Runs a kt plugin the way a user does: `kubectl kt-<name> ...` from the laptop namespace, with the
// plugins found on PATH by kubectl (plugins/bin holds the kubectl-kt_* launchers).
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { cluster, runInLaptop, type RunResult } from './cluster.ts';

export const pluginPath = `${resolve('plugins/bin')}:${cluster.binDir}:${process.env.PATH ?? ''}`;

export function laptopEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return { ...process.env, PATH: pluginPath, KUBECONFIG: cluster.laptopKubeconfig, ...extra };
}

export interface RunningPlugin {
  proc: ChildProcess;
  output(): string;
  /** Resolves when the combined output matches, rejects on exit or timeout. */
  waitFor(re: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  /** Sends a signal and resolves with the exit code. */
  stop(signal?: NodeJS.Signals, timeoutMs?: number): Promise<number | null>;
  exited: Promise<number | null>;
}

export function startPlugin(plugin: string, args: string[], env: Record<string, string> = {}): RunningPlugin {
  const proc = spawn('ip', ['netns', 'exec', cluster.laptopNs, 'kubectl', plugin, ...args], {
    env: laptopEnv(env),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  const listeners = new Set<() => void>();
  const onData = (d: Buffer): void => { out += d.toString(); for (const l of listeners) l(); };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  const exited = new Promise<number | null>((r) => proc.on('exit', (code) => { r(code); for (const l of listeners) l(); }));
  let done = false;
  void exited.then(() => { done = true; });
  return {
    proc,
    exited,
    output: () => out,
    waitFor: (re, timeoutMs = 60_000) => new Promise((resolveMatch, reject) => {
      const check = (): void => {
        const m = out.match(re);
        if (m) { cleanup(); resolveMatch(m); return; }
        if (done) { cleanup(); reject(new Error(`kubectl ${plugin} exited before printing ${re}:\n${out}`)); }
      };
      const timer = setTimeout(() => { cleanup(); reject(new Error(`timed out waiting for ${re} from kubectl ${plugin}:\n${out}`)); }, timeoutMs);
      const cleanup = (): void => { clearTimeout(timer); listeners.delete(check); };
      listeners.add(check);
      check();
    }),
    stop: async (signal = 'SIGINT', timeoutMs = 30_000) => {
      // The plugin's node process is the grandchild (ip netns exec -> kubectl -> plugin): signal
      // it by pid, found by its command line under our child.
      const pid = pluginPid(proc.pid!);
      if (pid) process.kill(pid, signal);
      const t = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
      const code = await exited;
      clearTimeout(t);
      return code;
    },
  };
}

/**
 * The pid of the plugin process among root and its descendants (ip netns exec, kubectl and the
 * launcher exec into it): by default the source tree's node process, or whatever `isPlugin` says
 * (a standalone binary, say).
 */
export function pluginPid(root: number, isPlugin: (cmdline: string) => boolean = (c) => c.includes('plugins/cmd/kt-')): number | undefined {
  const children = new Map<number, number[]>();
  const cmd = new Map<number, string>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(d)]);
      cmd.set(Number(d), readFileSync(`/proc/${d}/cmdline`, 'utf8'));
    } catch { /* exited */ }
  }
  const queue = [root];
  while (queue.length > 0) {
    const p = queue.shift()!;
    if (isPlugin(cmd.get(p) ?? '')) return p;
    queue.push(...(children.get(p) ?? []));
  }
  return undefined;
}

/** Runs a plugin to completion from the laptop. */
export function runPlugin(plugin: string, args: string[], env: Record<string, string> = {}, timeoutMs = 60_000): Promise<RunResult> {
  return runInLaptop('env', [...Object.entries(laptopEnv(env)).filter(([k]) => ['PATH', 'KUBECONFIG', 'HOME', 'KT_STATE_DIR'].includes(k) || k in env).map(([k, v]) => `${k}=${v}`), 'kubectl', plugin, ...args], timeoutMs);
}

/**
 * Plugins started through `start` are stopped by `stopStragglers` (run it after each test), so one
 * failed test does not leave a plugin running into the next; the first `keep` live for the file.
 */
export function trackedPlugins(keep = 0): { start: typeof startPlugin; stopStragglers: () => Promise<void> } {
  const running: RunningPlugin[] = [];
  return {
    start: (...args) => { const p = startPlugin(...args); running.push(p); return p; },
    stopStragglers: async () => {
      for (const p of running.splice(keep)) if (p.proc.exitCode === null && p.proc.signalCode === null) await p.stop('SIGINT');
    },
  };
}
