// The contract between the kt plugins on the laptop and the images they run in the cluster:
// labels, annotations, ports, paths, commands, Secret layout, environment, timings and the JSON
// documents the sides exchange (route table, recovery plan, lock). Written once, imported by every
// side; change it here or not at all.
//
// Versioning. CONTRACT_VERSION is MAJOR.MINOR. In a mesh the first developer's router serves every
// later developer's routes, and a shadow or router image can be older or newer than the plugin
// talking to it, so mixed versions are normal. The rule:
// - MINOR goes up for an additive change that an older peer can ignore safely: a new optional
//   field in a document (whose absence means what it meant before), a new recovery step, a new
//   path or environment variable with a default that keeps the old behaviour. A reader ignores
//   fields it does not know and keeps them when it writes a document back (read, change, write);
//   what it cannot do it reports, never skips (an unknown recovery step is a failure naming the
//   version that knows it).
// - MAJOR goes up for everything else: a field removed, renamed, made required or given another
//   meaning or unit; a changed name, port, path, label, annotation, environment variable, ping or
//   probe exchange; a timing one side relies on the other to keep. Peers of different MAJORs do
//   not work together, and say so: a reader refuses a route table written by a newer MAJOR, and
//   kt-mesh refuses to join a mesh whose router speaks another MAJOR, naming the router image to
//   use. A newer MINOR on the other side is fine (kt-mesh warns once).
// - A peer that reports no version predates versioning and speaks 1.0.
// The version travels: the shadow answers the ping with it (SHADOW_PING), the router adds it to
// its route-table document (ROUTER_STATUS), and the route table carries its writer's.

/** The version of this contract; see the rule above before changing anything in this folder. */
export const CONTRACT_VERSION = '1.1';

/** What a peer that reports no version speaks (it predates versioning). */
export const UNVERSIONED_CONTRACT = '1.0';

/** Labels carried by every object kt creates. */
export const LABEL = {
  managedBy: 'app.kubernetes.io/managed-by',
  /** What the object is for: see ROLE. */
  role: 'kt.dev/role',
  /** The session that owns the object: one kt command run. */
  session: 'kt.dev/session',
} as const;

export const MANAGED_BY = 'kt';

export const ROLE = {
  shadow: 'shadow',
  router: 'router',
  /** A Service kt created: a preview, or a mesh's helper Services. */
  service: 'service',
} as const;
export type Role = (typeof ROLE)[keyof typeof ROLE];

/** Annotations carried by every object kt creates. */
export const ANNOTATION = {
  /** Who ran the session (the local user name and host). */
  user: 'kt.dev/user',
  /** Which kt command created it: connect, exchange, mesh, preview. */
  kind: 'kt.dev/kind',
  /** The kt version that created it. */
  version: 'kt.dev/version',
  /** What the session works on, e.g. `service/echo` (shown by kt-status). */
  target: 'kt.dev/target',
  /** On a Service kt changed: the selector it had before, as JSON. */
  originalSelector: 'kt.dev/original-selector',
  /** On a Deployment kt scaled to zero: the replica count it had before. */
  originalReplicas: 'kt.dev/original-replicas',
  /** On a Service or Deployment kt changed: who holds it, as JSON `Lock`. */
  lock: 'kt.dev/lock',
} as const;

/** Who holds a Service or Deployment kt changed; refreshed with the heartbeat. */
export interface Lock {
  session: string;
  user: string;
  kind: 'exchange' | 'mesh';
  /** Cluster time (ms) the lock was taken. */
  since: number;
}

/** Labels kt gives shadow pods so that a Service can select them. */
export const SELECT_LABEL = {
  exchange: 'kt.dev/exchange',
  preview: 'kt.dev/preview',
  mesh: 'kt.dev/mesh',
} as const;

/**
 * The heartbeat is an update by this field manager; the API server stamps the update's time into
 * metadata.managedFields with its own clock, so staleness is judged by the cluster's clock, never
 * the laptop's.
 */
export const HEARTBEAT_FIELD_MANAGER = 'kt-heartbeat';
export const HEARTBEAT_ANNOTATION = 'kt.dev/heartbeat';
export const HEARTBEAT_INTERVAL_MS = 30_000;
/** A session whose heartbeat is older than this is stale. */
export const STALE_AFTER_MS = 3 * 60_000;

/** Ports the shadow listens on inside its pod (all unprivileged: the pod runs as non-root). */
export const SHADOW_PORT = {
  ssh: 2222,
  dns: 5353,
  health: 8081,
} as const;

/** The SSH user the laptop logs in as; only the session's key is accepted. */
export const SSH_USER = 'kt';

/** Where the per-session Secret is mounted in the shadow, and its keys. */
export const SESSION_SECRET = {
  mountPath: '/etc/kt/session',
  /** OpenSSH public key line of the session's client key. */
  authorizedKey: 'authorized_key',
  /** PEM (OpenSSH format) private host key; the laptop pins its public half. */
  hostKey: 'host_key',
} as const;

/** Environment variables the shadow reads. */
export const SHADOW_ENV = {
  session: 'KT_SESSION',
  namespace: 'KT_NAMESPACE',
  /** Cluster domain, for the DNS search list. Default cluster.local. */
  clusterDomain: 'KT_CLUSTER_DOMAIN',
  /** Log level: debug, info, warn, error. */
  logLevel: 'KT_LOG_LEVEL',
  /** Self-healing: how long without a laptop connected before the shadow restores the cluster. */
  recoverAfterMs: 'KT_RECOVER_AFTER_MS',
  /** Self-healing: what to undo, as JSON `RecoveryPlan`. */
  recoveryPlan: 'KT_RECOVERY_PLAN',
  /** The shadow pod's own name (downward API), so it can delete itself. */
  podName: 'KT_POD_NAME',
  /**
   * TEST ONLY, never set by kt: a MAJOR.MINOR the image reports instead of CONTRACT_VERSION, so
   * end-to-end tests can stand in for an image of another version. It changes what is reported,
   * nothing the image does.
   */
  testContractVersion: 'KT_TEST_CONTRACT_VERSION',
} as const;

/** The cluster DNS domain when none is given (`--cluster-domain`, SHADOW_ENV.clusterDomain). */
export const DEFAULT_CLUSTER_DOMAIN = 'cluster.local';

/**
 * The one command the laptop may exec over SSH: a health check. The shadow answers
 * `pong <CONTRACT_VERSION>` and a newline; a shadow from before versioning answers a bare `pong`.
 */
export const SHADOW_PING = { command: 'kt-ping', reply: 'pong' } as const;

/**
 * UDP over the SSH connection (contract 1.1; a 1.0 shadow refuses the exec). One flow = one SSH
 * session channel with the exec request `kt-udp <host> <port> <idleMs>`; the shadow never runs a
 * shell. It resolves host with its resolver (as direct-tcpip does), opens a UDP socket connected to
 * the destination, and writes one line on the channel's stderr: `ok` once the socket is ready, or
 * the reason it is not (then exit status 1 and the channel closes). After `ok`, both directions of
 * the channel's data carry datagrams, each framed as a 2-byte big-endian length and the payload
 * (runtime/udp-frames.ts). The laptop closes a flow with no datagram either way for idleMs; the
 * shadow closes it after idleMs + idleGraceMs (a laptop that vanished), so the laptop, which owns
 * the flow table, normally ends it first. A frame longer than maxDatagram ends the flow. Neither side queues more than maxQueuedBytes on a
 * channel or socket: datagrams beyond it are dropped and counted, as UDP may.
 */
export const SHADOW_UDP = {
  command: 'kt-udp',
  ready: 'ok',
  lengthBytes: 2,
  /** The largest UDP payload over IPv4 (65535 - 20 - 8). */
  maxDatagram: 65_507,
  defaultIdleMs: 60_000,
  minIdleMs: 1_000,
  maxIdleMs: 3_600_000,
  idleGraceMs: 5_000,
  /**
   * Flows one SSH connection may have open at once; more are refused (`too many UDP flows`), so
   * that UDP to many destinations cannot take every channel (SHADOW_LIMITS.maxChannels) from TCP.
   */
  maxFlows: 512,
  maxQueuedBytes: 256 * 1024,
  /** On the shadow's health port: the flows' counters as JSON (open, opened, expired, dropped, ...). */
  statsPath: '/udp',
} as const;

/** Health paths both images serve on their health port (Kubernetes probes use them too). */
export const HEALTH_PATH = { live: '/healthz', ready: '/readyz' } as const;

/**
 * What to undo when a session ends without its laptop: run by the shadow's watchdog (in the
 * cluster, with a ServiceAccount limited to exactly these objects) and by kt-clean. Each step is
 * guarded by the session id, so a step never undoes another session's change.
 */
export interface RecoveryPlan {
  /** The contract version of the kt that wrote the plan; absent: 1.0. Names who knows a step. */
  contract?: string;
  session: string;
  namespace: string;
  steps: RecoveryStep[];
}

export type RecoveryStep =
  /** Put a Service's selector back and drop kt's annotations, if this session still holds it. */
  | { op: 'restore-selector'; service: string }
  /**
   * Scale a Deployment back to its original replicas, if this session still holds it, and wait
   * (bounded) until its pods are Ready and, when `service` is named, listed ready in that
   * Service's endpoints besides the session's own shadow (unless the session still points that
   * Service at its shadow: then Ready only, and a restore-selector step after it follows).
   */
  | { op: 'restore-replicas'; deployment: string; service?: string }
  /** Delete an object the session created. */
  | { op: 'delete'; kind: 'Pod' | 'Service' | 'Secret'; name: string }
  /** Drop this session's routes from a mesh's route table. */
  | { op: 'remove-route'; configMap: string }
  /**
   * If a mesh's route table has no route left: give the Service its original selector back and
   * delete the route table, which owns the router and the real-pods Service (they go with it).
   */
  | { op: 'unmesh-if-idle'; service: string; configMap: string };

/** Names of a meshed Service's shared objects (one set per meshed Service). */
export function meshNames(service: string): { router: string; stuntman: string; routes: string } {
  // 63 is the limit for a Service name; the suffixes take at most 14 characters.
  const base = service.slice(0, 49);
  return { router: `${base}-kt-router`, stuntman: `${base}-kt-stuntman`, routes: `${base}-kt-routes` };
}

/** Label on router pods: which Service they route for. */
export const ROUTER_LABEL = 'kt.dev/router';

/** Limits the shadow enforces per SSH connection. */
export const SHADOW_LIMITS = {
  maxChannels: 1024,
  maxForwards: 64,
} as const;

export const DEFAULT_IMAGE_REGISTRY = 'ghcr.io/kt-dev';
export const IMAGE_NAME = { shadow: 'kt-shadow', router: 'kt-router' } as const;

/** The mesh router: one per meshed Service, shared by every developer meshing it. */
export const ROUTER_PORT = {
  /** Liveness/readiness and route-table status (never a Service's own port: kept unusual). */
  health: 18090,
} as const;

/**
 * How the laptop learns that a connection to a meshed Service goes through the router (kube-proxy
 * applies a selector change a moment later, and a connection keeps the pod it was opened to): an
 * HTTP request carrying `header` (any value) is answered by the router itself, never forwarded,
 * with status 204 and `podHeader` naming the router pod. The laptop sends it as `method` `path`:
 * when the connection still reaches a real pod, that pod gets a safe request (OPTIONS changes
 * nothing, RFC 9110 9.3.7) on a path no application serves, so it is harmless.
 */
export const ROUTER_PROBE = {
  header: 'kt-router-probe',
  podHeader: 'kt-router-pod',
  method: 'OPTIONS',
  path: '/.kt/probe',
} as const;

/**
 * How the shadow leaves on SIGTERM when it serves remote forwards (exchange, mesh, preview): it
 * keeps accepting for `lingerMs` (endpoint removal reaches kube-proxy asynchronously), then stops
 * accepting and gives forwarded connections `graceMs` to finish, over the still open SSH
 * connection; the process exits by `deadlineMs`, below the pod's terminationGracePeriodSeconds.
 */
export const SHADOW_DRAIN = {
  lingerMs: 1000,
  graceMs: 2500,
  deadlineMs: 4000,
  terminationGracePeriodSeconds: 5,
} as const;

/**
 * How the router leaves on SIGTERM. It keeps accepting for `lingerMs` (endpoint removal reaches
 * kube-proxy asynchronously, so callers may still be sent here), answering HTTP/1.1 with
 * `Connection: close` and sending HTTP/2 GOAWAY so kept-alive callers reconnect elsewhere; then
 * it stops accepting and gives open requests `graceMs`; the process exits by `deadlineMs`. The
 * router pod's terminationGracePeriodSeconds is above that deadline.
 */
export const ROUTER_DRAIN = {
  lingerMs: 3000,
  graceMs: 10_000,
  deadlineMs: 15_000,
  terminationGracePeriodSeconds: 20,
} as const;

/** Environment variables the router reads. */
export const ROUTER_ENV = {
  namespace: 'KT_NAMESPACE',
  /** The ConfigMap holding the route table (key ROUTES_KEY); the router watches it live. */
  routesConfigMap: 'KT_ROUTES_CONFIGMAP',
  /** For tests and local runs: a JSON file with the route table instead of the ConfigMap. */
  routesFile: 'KT_ROUTES_FILE',
  logLevel: 'KT_LOG_LEVEL',
  /**
   * TEST ONLY, never set by kt: a MAJOR.MINOR the image reports instead of CONTRACT_VERSION, so
   * end-to-end tests can stand in for an image of another version. It changes what is reported,
   * nothing the image does.
   */
  testContractVersion: 'KT_TEST_CONTRACT_VERSION',
} as const;

export const ROUTES_KEY = 'routes.json';

/**
 * The router's route-table document, on its health port: GET `path` answers the table in force
 * (RouteTable, as loaded) plus `versionField`, the contract version the router speaks; 503 while
 * no table is loaded. The laptop reads it to learn whether the router has a route, and whether it
 * may join the mesh at all.
 */
export const ROUTER_STATUS = { path: '/routes', versionField: 'routerContract' } as const;

/** What ROUTER_STATUS.path answers. */
export type RouterStatus = RouteTable & { routerContract: string };

/** Default header kt-mesh routes by; `--version-mark KEY:VALUE` overrides it. */
export const DEFAULT_VERSION_HEADER = 'kt-version';

/**
 * The route table in the ConfigMap. The router listens on every port in `ports` (the original
 * Service's target ports). Per HTTP request: if header `header` (or the same key inside an
 * OpenTelemetry `baggage` header) equals a route's `version`, the request goes to
 * `route.target:port`; everything else goes to `defaultTarget:port`. `tcp` ports always go to
 * `defaultTarget`.
 */
export interface RouteTable {
  /**
   * The contract version (MAJOR.MINOR) of the newest kt that wrote the table; absent: 1.0. A
   * writer never lowers it; a reader refuses a table of a newer MAJOR.
   */
  contract?: string;
  header: string;
  ports: { port: number; name?: string; protocol: 'http' | 'tcp' }[];
  /** Host of the Service that keeps the original selector (the real pods). */
  defaultTarget: string;
  routes: Route[];
}

export interface Route {
  version: string;
  /** Host of the developer's shadow Service. */
  target: string;
  session: string;
  user: string;
}
