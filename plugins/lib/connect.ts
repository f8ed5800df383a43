// kubectl kt-connect: the laptop joins the cluster's network through the session's tunnel, in one
// of three modes (socks, transparent, hosts). This module chooses the mode, reserves local
// resources before anything is created in the cluster, and prints what to do next.
import { spawn } from 'node:child_process';
import { bool, type Parsed } from './cli.ts';
import type { Dialer } from './dialer.ts';
import { UserError } from './errors.ts';
import type { Kube } from './kube.ts';
import type { Logger } from './log.ts';
import { checkDnsPortFree, parseConnectFlags, refuseSecondTransparent } from './connect-flags.ts';
import { startShadowSession } from './shadow-session.ts';
import { jvmFlags, proxyEnv, startProxy, type Proxy } from './socks-proxy.ts';

export { CONNECT_MODES, defaultMode, type ConnectMode } from './connect-flags.ts';

export interface ModeHandle {
  /** Lines for the banner. */
  banner: string[];
  /** Environment for `kt-connect -- command`. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/** A dialer whose tunnel is attached later: modes bind their ports before the pod exists. */
function lateDialer(): { dial: Dialer; attach: (d: Dialer) => void } {
  let real: Dialer | undefined;
  return {
    dial: (h, p) => (real ? real(h, p) : Promise.reject(new Error('the tunnel is not connected yet'))),
    attach: (d) => { real = d; },
  };
}

/** A command to suggest in the banner: one real Service of the namespace, else the API's own. */
async function suggestion(kube: Kube, log: Logger): Promise<string> {
  try {
    const svcs = await kube.core.listNamespacedService({ namespace: kube.namespace });
    const s = svcs.items.find((x) => x.spec?.clusterIP && x.spec.clusterIP !== 'None' && x.metadata?.name !== 'kubernetes');
    if (s) {
      const port = s.spec?.ports?.[0]?.port ?? 80;
      return `http://${s.metadata!.name}.${kube.namespace}${port === 80 ? '' : `:${port}`}/`;
    }
  } catch (e) {
    log.debug(`cannot list services for the banner: ${(e as Error).message}`);
  }
  return 'https://kubernetes.default/version';
}

export async function runConnect(p: Parsed): Promise<number> {
  const flags = parseConnectFlags(p);
  const { mode } = flags;
  const late = lateDialer();
  let proxy: Proxy | undefined;

  const s = await startShadowSession(p, {
    kind: 'connect',
    mode,
    preflight: async () => {
      if (mode === 'transparent') {
        refuseSecondTransparent();
        await checkDnsPortFree(flags.dnsPort);
      }
      // Hosts mode gives names; the proxy beside it reaches ClusterIPs and pod IPs.
      if (mode === 'socks' || mode === 'hosts') {
        const port = flags.proxyPort;
        try {
          proxy = await startProxy({ host: '127.0.0.1', port, dial: late.dial });
        } catch (e) {
          throw new UserError((e as Error).message);
        }
      }
    },
  });
  late.attach(s.tunnel.dial);

  let handle: ModeHandle;
  if (mode === 'socks') {
    const px = proxy!;
    s.life.defer('stop the local proxy', () => px.close());
    const env = proxyEnv(px.port);
    const url = await suggestion(s.kube, s.log);
    handle = {
      env,
      banner: [
        `SOCKS5 and HTTP proxy on 127.0.0.1:${px.port} (names resolve in the cluster).`,
        `  export ALL_PROXY=${env.ALL_PROXY} HTTP_PROXY=${env.HTTP_PROXY} HTTPS_PROXY=${env.HTTPS_PROXY} NO_PROXY=${env.NO_PROXY}`,
        `  JVM flags: ${jvmFlags(px.port)}`,
        `  try: curl --proxy socks5h://127.0.0.1:${px.port} ${url}`,
        '  or run one command with the proxy set: kubectl kt-connect -- <command>',
      ],
      close: () => px.close(),
    };
    s.record({ proxyPort: px.port, proxyStats: px.stats() }, mode);
  } else {
    const { startConnectMode } = await import('./connect-modes.ts');
    handle = await startConnectMode(mode, p, s);
    s.life.defer(`undo ${mode} mode`, () => handle.close());
    if (proxy) {
      const px = proxy;
      s.life.defer('stop the local proxy', () => px.close());
      handle.banner.push(`  ClusterIPs and pod IPs: through the SOCKS5/HTTP proxy on 127.0.0.1:${px.port} (kubectl kt-connect -- <command> sets it)`);
      Object.assign(handle.env, proxyEnv(px.port));
    }
    s.record(proxy ? { proxyPort: proxy.port } : {}, mode);
  }

  s.log.info(`kt-connect: connected to namespace "${s.kube.namespace}" (context ${s.kube.context}, session ${s.session.id}, mode ${mode}).`);
  for (const line of handle.banner) s.log.info(line);

  if (p.rest.length > 0) {
    const [cmd, ...args] = p.rest;
    const child = spawn(cmd!, args, { stdio: 'inherit', env: { ...process.env, ...handle.env } });
    const code = await Promise.race([
      new Promise<number>((resolve) => {
        child.on('exit', (c, sig) => resolve(c ?? (sig ? 128 : 1)));
        child.on('error', (e) => { s.log.warn(`cannot run ${cmd}: ${e.message}`); resolve(127); });
      }),
      s.signal.then(() => { child.kill('SIGTERM'); return 130; }),
    ]);
    await s.life.close();
    return code;
  }

  if (!bool(p, 'quiet')) s.log.info('Press Ctrl-C to disconnect.');
  return s.runUntilSignal('disconnecting', 'kt-connect: disconnected; nothing is left in the cluster.');
}
