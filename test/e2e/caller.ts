// An in-cluster caller across a switch (tools/switch-caller.js run in a client pod): polls a URL
// on new connections, or loads it on kept-alive ones, until stopped; then says which pods answered
// (and when first and last) and which requests failed. Used by the e2e tests and bench/switch.ts.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cluster } from './cluster.ts';

export interface CallerResult {
  requests: number;
  errors: { at: number; what: string }[];
  pods: Record<string, number>;
  /** Request start times (ms since the epoch) of each pod's first and last answer. */
  first: Record<string, number>;
  last: Record<string, number>;
  ms: number;
}

export interface Caller {
  /** Ends the caller (its stdin) and resolves with its summary. */
  stop(): Promise<CallerResult>;
  /** Resolves when it ended by itself (maxMs) or was stopped. */
  done: Promise<CallerResult>;
}

const script = readFileSync('test/e2e/tools/switch-caller.js', 'utf8');

export async function startCaller(namespace: string, pod: string, url: string, o: { mode: 'poll' | 'keepalive'; intervalMs: number; concurrency?: number; maxMs?: number }): Promise<Caller> {
  const proc = spawn(cluster.kubectl, ['--kubeconfig', cluster.kubeconfig, 'exec', '-i', '-n', namespace, pod, '--', 'node', '-e', script,
    url, o.mode, String(o.intervalMs), String(o.concurrency ?? 1), String(o.maxMs ?? 180_000)], { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  proc.stdout.on('data', (d: Buffer) => { out += d.toString(); });
  const started = new Promise<void>((resolve, reject) => {
    proc.stderr.on('data', (d: Buffer) => { err += d.toString(); if (err.includes('started')) resolve(); });
    proc.on('exit', () => reject(new Error(`the caller exited early: ${err}`)));
  });
  const done = new Promise<CallerResult>((resolve, reject) => proc.on('exit', () => {
    try { resolve(JSON.parse(out.trim().split('\n').at(-1)!) as CallerResult); } catch { reject(new Error(`the caller said: ${out} ${err}`)); }
  }));
  done.catch(() => undefined);
  await started;
  return { done, stop: () => { proc.stdin.end(); return done; } };
}
