// kubectl kt-connect: the laptop joins the cluster's network through the session's tunnel, in one
// of three modes (socks/, transparent/, hosts/, each with its start and its crash cleanup). This
// module checks the flags, reserves local resources before anything is created in the cluster,
// starts the mode and prints what to do next.
import type { Options } from '../cli/cli.ts';
import type { Dialer } from '../tunnel/dialer.ts';
import type { UdpTunnel } from '../tunnel/udp.ts';
import { UserError } from '../cli/errors.ts';
import { checkDnsPortFree, parseConnectFlags, refuseSecondTransparent, type CONNECT_ALL_FLAGS } from './flags.ts';
import { startShadowSession } from '../session/shadow-session.ts';
import { startHostsModeFor } from './hosts/start.ts';
import type { ModeHandle } from './mode.ts';
import { proxyEnv, startProxy, type Proxy } from './socks/socks-proxy.ts';
import { startSocksMode, suggestion } from './socks/start.ts';
import { startTransparentMode } from './transparent/start.ts';
import { refuseIncludedApiServer } from './transparent/api-server-guard.ts';
import { checkPodEnvFlags, preparePodEnv, runCommand, type PodEnv } from '../podenv/podenv.ts';
import { reportCriticalPath } from '../kube/round-trips.ts';

export { CONNECT_MODES, defaultMode, type ConnectMode } from './flags.ts';

/** A dialer whose tunnel is attached later: modes bind their ports before the pod exists. */
function lateDialer(): { dial: Dialer; attach: (d: Dialer) => void } {
  let real: Dialer | undefined;
  return {
    dial: (h, p) => (real ? real(h, p) : Promise.reject(new Error('the tunnel is not connected yet'))),
    attach: (d) => { real = d; },
  };
}

export async function runConnect(o: Options<typeof CONNECT_ALL_FLAGS>): Promise<number> {
  const flags = parseConnectFlags(o);
  const envReq = checkPodEnvFlags(o, true);
  let podEnv: PodEnv | undefined;
  const { mode } = flags;
  const late = lateDialer();
  // UDP flows, like dials, wait for the tunnel.
  const udpVia: { tunnel?: UdpTunnel } = {};
  const lateUdp: UdpTunnel = { exec: (command) => (udpVia.tunnel ? udpVia.tunnel.exec(command) : Promise.reject(new Error('the tunnel is not connected yet'))) };
  let proxy: Proxy | undefined;
  let suggested: Promise<string> | undefined;

  const s = await startShadowSession(o, {
    kind: 'connect',
    mode,
    preflight: async (kube, log) => {
      podEnv = await preparePodEnv(kube, log, envReq);
      if (mode === 'transparent') {
        // Bad input is said as such, whether or not another session runs.
        await refuseIncludedApiServer(flags.includeCidrs, kube.server);
        refuseSecondTransparent();
        await checkDnsPortFree(flags.dnsPort);
      }
      // The banner's example, asked now rather than after the tunnel (it never fails).
      if (mode === 'socks') suggested = suggestion(kube, log);
      // Hosts mode gives names; the proxy beside it reaches ClusterIPs and pod IPs.
      if (mode === 'socks' || mode === 'hosts') {
        const port = flags.proxyPort;
        try {
          proxy = await startProxy({ host: '127.0.0.1', port, dial: late.dial, udp: { tunnel: lateUdp, idleMs: flags.udpIdleMs }, log });
        } catch (e) {
          throw new UserError((e as Error).message);
        }
      }
    },
  });
  late.attach(s.tunnel.dial);
  udpVia.tunnel = s.tunnel;
  await podEnv?.materialise(s);

  let handle: ModeHandle;
  if (mode === 'socks') {
    handle = await startSocksMode(proxy!, s, suggested);
  } else {
    handle = mode === 'transparent' ? await startTransparentMode(flags, s) : await startHostsModeFor(flags, s);
    s.life.defer(`undo ${mode} mode`, () => handle.close());
    if (proxy) {
      const px = proxy;
      s.life.defer('stop the local proxy', () => px.close());
      handle.banner.push(`  ClusterIPs and pod IPs: through the SOCKS5/HTTP proxy on 127.0.0.1:${px.port} (kubectl kt-connect -- <command> sets it)`);
      Object.assign(handle.env, proxyEnv(px.port));
    }
    s.record(proxy ? { proxyPort: proxy.port } : {}, mode);
  }

  reportCriticalPath(s.log, 'kt-connect');
  s.log.info(`kt-connect: connected to namespace "${s.kube.namespace}" (context ${s.kube.context}, session ${s.session.id}, mode ${mode}).`);
  for (const line of handle.banner) s.log.info(line);

  // Ctrl-C reaches the program first, and kt exits with its code (as with kt-exchange's).
  if (o.rest.length > 0) return runCommand(s, o.rest, { ...podEnv?.env, ...handle.env });

  if (!o.quiet) s.log.info('Press Ctrl-C to disconnect.');
  return s.runUntilSignal('disconnecting', 'kt-connect: disconnected; nothing is left in the cluster.');
}
