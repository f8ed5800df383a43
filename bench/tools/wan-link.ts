// An emulated WAN between the laptop namespace and the API server: toxiproxy on the host listens
// on the host side of the laptop's veth and forwards to the API server, with latency and bandwidth
// toxics per profile. The laptop reaches the cluster only through the API server, so every byte
// of kt and of `kubectl port-forward` crosses the emulated link. Used by bench/wan.ts.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { dump, load } from 'js-yaml';

export interface WanProfile {
  name: string;
  /** Round trip added, split evenly between the two directions. */
  rttMs: number;
  /** Each direction; 0: no limit. */
  mbitPerSec: number;
}

export const WAN_PROFILES: readonly WanProfile[] = [
  { name: 'LAN', rttMs: 0, mbitPerSec: 0 },
  { name: '40 ms, 100 Mbit/s', rttMs: 40, mbitPerSec: 100 },
  { name: '40 ms, 1 Gbit/s', rttMs: 40, mbitPerSec: 1000 },
  { name: '150 ms, 50 Mbit/s', rttMs: 150, mbitPerSec: 50 },
];

export interface WanLink {
  /** A kubeconfig like the laptop's whose server is the proxy. */
  kubeconfig: string;
  apply(profile: WanProfile): Promise<void>;
  stop(): Promise<void>;
}

interface Options {
  /** Folder of toxiproxy-server (bench/toxiproxy.sh prints it). */
  binDir: string;
  /** The laptop's kubeconfig, whose server is the real API server. */
  laptopKubeconfig: string;
  /** An address of the host the laptop namespace reaches (the host side of its veth). */
  listenHost: string;
}

function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, host, () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });
}

type KubeconfigFile = { clusters: { name: string; cluster: Record<string, unknown> }[] };

export async function startWanLink(o: Options): Promise<WanLink> {
  const apiPort = await freePort('127.0.0.1');
  const listenPort = await freePort(o.listenHost);
  const server: ChildProcess = spawn(join(o.binDir, 'toxiproxy-server'), ['-host', '127.0.0.1', '-port', String(apiPort)], { stdio: ['ignore', 'ignore', 'pipe'] });
  let log = '';
  server.stderr?.on('data', (d: Buffer) => { log = (log + d.toString()).slice(-4000); });
  const api = `http://127.0.0.1:${apiPort}`;
  const call = async (method: string, path: string, body?: unknown): Promise<unknown> => {
    const r = await fetch(`${api}${path}`, { method, ...(body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } }) });
    const text = await r.text();
    if (!r.ok) throw new Error(`toxiproxy ${method} ${path}: ${r.status} ${text}`);
    return r.headers.get('content-type')?.includes('json') ? JSON.parse(text) as unknown : text;
  };
  // Whatever fails from here on, the server started above must not outlive this call.
  const stopServer = (): Promise<unknown> => (server.exitCode === null ? (server.kill('SIGTERM'), new Promise((r) => server.once('exit', r))) : Promise.resolve());
  try {
    return await setUp();
  } catch (e) {
    await stopServer();
    throw e;
  }

  async function setUp(): Promise<WanLink> {
    for (let i = 0; ; i++) {
      try {
        await call('GET', '/version');
        break;
      } catch (e) {
        if (i > 100 || server.exitCode !== null) throw new Error(`toxiproxy-server did not start: ${(e as Error).message}\n${log}`, { cause: e });
        await new Promise((r) => setTimeout(r, 50));
      }
    }

    const config = load(readFileSync(o.laptopKubeconfig, 'utf8')) as KubeconfigFile;
    const entry = config.clusters[0]!.cluster;
    const upstream = new URL(String(entry.server));
    await call('POST', '/proxies', { name: 'api', listen: `${o.listenHost}:${listenPort}`, upstream: upstream.host, enabled: true });
    // The API server's certificate does not name the proxy's address; every API server's names
    // `kubernetes` (its in-cluster Service), and Node refuses an IP address as a TLS server name.
    entry['tls-server-name'] = 'kubernetes';
    entry.server = `https://${o.listenHost}:${listenPort}`;
    const dir = mkdtempSync(join(tmpdir(), 'kt-bench-wan-'));
    const kubeconfig = join(dir, 'kubeconfig');
    writeFileSync(kubeconfig, dump(config), { mode: 0o600 });

    let toxics: string[] = [];
    return {
      kubeconfig,
      async apply(profile) {
        for (const name of toxics) await call('DELETE', `/proxies/api/toxics/${encodeURIComponent(name)}`);
        toxics = [];
        for (const stream of ['upstream', 'downstream'] as const) {
          if (profile.rttMs > 0) {
            const name = `latency-${stream}`;
            await call('POST', '/proxies/api/toxics', { name, type: 'latency', stream, toxicity: 1, attributes: { latency: profile.rttMs / 2, jitter: 0 } });
            toxics.push(name);
          }
          if (profile.mbitPerSec > 0) {
            const name = `bandwidth-${stream}`;
            // toxiproxy's rate is in KB/s (1000 bytes).
            await call('POST', '/proxies/api/toxics', { name, type: 'bandwidth', stream, toxicity: 1, attributes: { rate: profile.mbitPerSec * 125 } });
            toxics.push(name);
          }
        }
      },
      async stop() {
        await stopServer();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
}
