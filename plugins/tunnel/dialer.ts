import type { Duplex } from 'node:stream';

/**
 * Opens a TCP connection to `host:port` as seen from inside the cluster. `host` may be an IP or a
 * cluster name (`svc`, `svc.ns`, FQDN): names are resolved in the cluster, not on the laptop.
 * Rejects promptly when the destination refuses or the tunnel is down.
 */
export type Dialer = (host: string, port: number) => Promise<Duplex>;

/**
 * Resolves a cluster name to addresses using cluster DNS (through the tunnel). Empty when the
 * name does not exist.
 */
export type ClusterResolver = (name: string, type: 'A' | 'AAAA') => Promise<string[]>;
