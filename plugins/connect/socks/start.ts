// kt-connect --mode socks on a connected session: the SOCKS5/HTTP proxy (bound before the session
// began) is what programs use; the banner says how to point them at it.
import type { Kube } from '../../kube/kube.ts';
import type { Logger } from '../../cli/log.ts';
import type { ShadowSession } from '../../session/shadow-session.ts';
import type { ModeHandle } from '../mode.ts';
import { jvmFlags, proxyEnv, type Proxy } from './socks-proxy.ts';

/** A command to suggest in the banner: one real Service of the namespace, else the API's own. */
export async function suggestion(kube: Kube, log: Logger): Promise<string> {
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

/** `suggested`: the banner's command, asked while the pod started (see suggestion). */
export async function startSocksMode(px: Proxy, s: ShadowSession, suggested?: Promise<string>): Promise<ModeHandle> {
  s.life.defer('stop the local proxy', () => px.close());
  const env = proxyEnv(px.port);
  const url = await (suggested ?? suggestion(s.kube, s.log));
  s.record({ proxyPort: px.port, proxyStats: px.stats() }, 'socks');
  return {
    env,
    banner: [
      `SOCKS5 (TCP and UDP) and HTTP proxy on 127.0.0.1:${px.port} (names resolve in the cluster).`,
      `  export ALL_PROXY=${env.ALL_PROXY} HTTP_PROXY=${env.HTTP_PROXY} HTTPS_PROXY=${env.HTTPS_PROXY} NO_PROXY=${env.NO_PROXY}`,
      `  JVM flags: ${jvmFlags(px.port)}`,
      `  try: curl --proxy socks5h://127.0.0.1:${px.port} ${url}`,
      '  or run one command with the proxy set: kubectl kt-connect -- <command>',
    ],
    close: () => px.close(),
  };
}
