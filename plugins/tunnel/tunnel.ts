// The tunnel: one SSH connection to the session's shadow pod over one port-forward through the API
// server. Outbound connections are SSH channels (direct-tcpip), inbound ones SSH remote forwards.
// When the port-forward, the connection or the pod dies, it reconnects by itself with backoff and
// re-registers remote forwards; callers just retry. It is transport only: the pod is handed to it
// as a lifecycle (the session creates it, and recreates it when it is gone), and the stream to the
// pod's SSH port as an opener (a port-forward), so it runs against any SSH server in tests.
import { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';
import ssh2, { type Client, type ClientChannel, type TcpConnectionDetails, type AcceptConnection, type RejectConnection } from 'ssh2';
import { SHADOW_PING, SHADOW_PORT, SSH_USER } from '../../contract/index.ts';
import { parsePingReply, type ContractVersion } from '../../contract/version.ts';
import type { Dialer } from './dialer.ts';
import { UserError } from '../cli/errors.ts';
import { widenWindow } from '../../runtime/ssh-window.ts';
import { batchWritesPerTick } from '../../runtime/ssh-writes.ts';
import { leanAesGcm } from '../../runtime/ssh-gcm.ts';
import { tuneGcForBulk } from '../../runtime/bulk-gc.ts';
import { joinStreams } from '../../runtime/join.ts';
import type { Kube } from '../kube/kube.ts';
import { pinnedHostVerifier, type SessionKeys } from '../session/keys.ts';
import type { Logger } from '../cli/log.ts';
import { missingPermission } from '../kube/api-errors.ts';
import { openPortForward, preconnect, type Preconnected } from './port-forward.ts';
import { step } from '../session/steps.ts';
import { begin, finish, phase, turnCounter } from '../kube/round-trips.ts';

export type TunnelState = 'connecting' | 'up' | 'reconnecting' | 'closed';

export interface TunnelHealth {
  state: TunnelState;
  since: number;
  reconnects: number;
  openChannels: number;
  totalChannels: number;
  lastError?: string | undefined;
}

/**
 * The shadow pod as the tunnel needs it; the session implements it (plugins/session/shadow-pod.ts).
 * Each throws a UserError that says why when the pod cannot start.
 */
export interface ShadowPodLifecycle {
  /**
   * Creates the pod and resolves once it is bound to a node, when a port-forward can be asked for
   * (see start()), with `running`: settles when its container runs, and rejects with a UserError
   * that says why when it cannot start; and `finished`: the rest of the creation, made meanwhile
   * (start() fails if it does).
   */
  create(): Promise<{ running: Promise<void>; finished?: Promise<void> }>;
  /** Before a reconnect: recreates the pod when it is gone, and waits until it is ready. */
  ensure(): Promise<void>;
}

/**
 * Opens a fresh byte stream to the shadow's SSH port (a port-forward; a plain socket in tests),
 * given up when `signal` aborts. `prepare`, when there, is called as the pod is being created: what
 * can be set up before the pod runs (a connection to the API server) is, so that it is not on the
 * way later; `discard` closes what was prepared and not used.
 */
export type OpenStream = ((signal?: AbortSignal) => Promise<Duplex>) & { prepare?: () => void; discard?: () => void };

export interface TunnelOptions {
  pod: ShadowPodLifecycle;
  openStream: OpenStream;
  keys: Pick<SessionKeys, 'clientPrivate' | 'hostPublicBlob'>;
  log: Logger;
  /** How long a dial waits for a reconnect in progress before it fails. */
  dialWaitMs?: number;
}

/**
 * A port-forward to the pod's SSH port through the API server. The SSH server speaks first, so the
 * forward is up once it does; for a few seconds a port nobody listens on yet (the container runs,
 * its process is starting) is asked again on the same connection.
 */
export function portForwardTo(kube: Kube, namespace: string, pod: string): OpenStream {
  let early: Preconnected | undefined;
  let opened = false;
  const open: OpenStream = async (signal) => {
    const mine = early;
    // Until a forward is up, the next attempt's connection is made beside this one: a pod still
    // starting refuses the upgrade, and its retry should not wait for a TCP and TLS handshake.
    early = opened ? undefined : preconnect(kube.kc);
    const socket = await mine?.whenReady();
    if (signal?.aborted) { socket?.destroy(); throw signal.reason; }
    try {
      const stream = await openPortForward(kube.kc, { namespace, pod, port: SHADOW_PORT.ssh }, 15_000, undefined, {
        serverSpeaksFirst: { retryUntil: Date.now() + 10_000 },
        ...(socket ? { socket: () => socket } : {}),
        ...(signal ? { signal } : {}),
      });
      opened = true;
      early?.discard();
      early = undefined;
      return stream;
    } catch (e) {
      if ((e as { statusCode?: number }).statusCode === 403) {
        throw new UserError(missingPermission({ verb: 'get', resource: 'pods/portforward', apiGroup: '', namespace }));
      }
      throw e;
    }
  };
  open.prepare = () => { early ??= preconnect(kube.kc); };
  open.discard = () => { early?.discard(); early = undefined; };
  return open;
}

/**
 * Called for each connection arriving on a remote forward: resolves with the local stream to join
 * it to, or rejects, and the caller in the cluster is refused at once instead of hanging.
 */
export type ForwardHandler = (info: TcpConnectionDetails) => Promise<Duplex>;

interface RemoteForward { bindAddr: string; port: number; handler: ForwardHandler }

const BACKOFF_MS = [200, 500, 1000, 2000, 4000, 5000];

export class Tunnel extends EventEmitter {
  readonly #o: TunnelOptions;
  #client: Client | undefined;
  #pf: Duplex | undefined;
  #state: TunnelState = 'connecting';
  #since = Date.now();
  #reconnects = 0;
  #open = 0;
  #total = 0;
  #lastError: string | undefined;
  #up: Promise<void>;
  #markUp: () => void = () => {};
  readonly #forwards = new Map<number, RemoteForward>();
  #reconnecting = false;

  constructor(o: TunnelOptions) {
    super();
    this.#o = o;
    this.#up = new Promise((r) => { this.#markUp = r; });
  }

  get state(): TunnelState { return this.#state; }

  // A method, not an inline comparison: the state changes across awaits.
  #isClosed(): boolean { return this.#state === 'closed'; }

  health(): TunnelHealth {
    return { state: this.#state, since: this.#since, reconnects: this.#reconnects, openChannels: this.#open, totalChannels: this.#total, lastError: this.#lastError };
  }

  #setState(s: TunnelState): void {
    if (s === this.#state) return;
    this.#state = s;
    this.#since = Date.now();
    this.emit('state', s);
    if (s === 'up') this.#markUp();
    if (s === 'reconnecting') this.#up = new Promise((r) => { this.#markUp = r; });
  }

  /** Has the shadow pod created, and connects. Throws a UserError when the pod cannot start. */
  async start(): Promise<void> {
    this.#o.openStream.prepare?.();
    const { running, finished } = await this.#o.pod.create();
    finished?.catch(() => undefined);
    try {
      await this.#firstConnect(running);
      // The rest of the pod's creation (its owner references) has had the whole connect to finish.
      await finished;
    } catch (e) {
      // Whatever creating the pod still does, or undoes, ends before the failure is said (its own
      // failure first: an interrupted step undid the pod, which is why connecting failed), and a
      // connection made meanwhile goes (it is not one to reconnect from).
      const cause = await finished?.then(() => undefined, (f: unknown) => f);
      const client = this.#client;
      this.#client = undefined;
      client?.end();
      this.#pf?.destroy();
      this.#o.openStream.discard?.();
      throw cause ?? e;
    }
    // A connection lost meanwhile is being reconnected: that loop says when it is up.
    if (this.#state === 'connecting') this.#setState('up');
  }

  /**
   * The pod is bound to a node. Its container is starting, or runs already: the kubelet reports
   * that up to a second late (it looks for started containers once a second), so the port-forward
   * is asked for now and asks again until the SSH server answers. A pod that cannot start ends the
   * wait at once, with the reason. Should connecting fail once the pod runs, it may be crashing or
   * restarting: once it is Ready (or explained), a few more tries.
   */
  async #firstConnect(running: Promise<void>): Promise<void> {
    const { log } = this.#o;
    const abandon = new AbortController();
    let connected = false;
    let reportedRunning = false;
    running.then(() => { reportedRunning = true; }, (e: unknown) => { if (!connected) abandon.abort(e); });
    await step('open the port-forward and the SSH connection');
    phase('port-forward (once the pod takes it) and SSH');
    let looks = 0;
    for (let attempt = 1; ; attempt++) {
      try {
        const t0 = Date.now();
        await this.#connect(abandon.signal);
        connected = true;
        log.debug(`connected: port-forward and SSH up in ${Date.now() - t0} ms`);
        return;
      } catch (e) {
        if (abandon.signal.aborted) throw abandon.signal.reason;
        if (e instanceof UserError) throw e;
        if (!reportedRunning) {
          // The runtime refuses a port-forward until the pod's sandbox exists: asked again shortly
          // (a sandbox takes some tenths of a second; later once a second), over a connection opened
          // meanwhile. Not counted as attempts: `running` bounds this (the pod timeout).
          log.debug(`the pod does not take a port-forward yet (${(e as Error).message}); asking again`);
          await new Promise((r) => setTimeout(r, ++looks <= 15 ? 100 : 1000));
          attempt--;
          continue;
        }
        if (attempt >= 3) throw e;
        log.debug(`connect attempt ${attempt} failed: ${(e as Error).message}; retrying once the pod is ready`);
        await this.#o.pod.ensure();
        await new Promise((r) => setTimeout(r, 100 * attempt));
      }
    }
  }

  async #connect(signal?: AbortSignal): Promise<void> {
    const { keys } = this.#o;
    const pf = await this.#o.openStream(signal);
    // Round trips of the SSH handshake, seen on the stream that carries it.
    const turns = turnCounter('SSH handshake');
    const write = pf.write.bind(pf) as (...a: unknown[]) => boolean;
    (pf as { write: (...a: unknown[]) => boolean }).write = (...a: unknown[]): boolean => { turns.out(); return write(...a); };
    pf.on('data', turns.in);
    batchWritesPerTick(pf);
    // Garbage collection was the largest share of the CPU a bulk transfer costs here.
    leanAesGcm();
    tuneGcForBulk();
    const client = new ssh2.Client();
    // ssh2 may emit more than one error for one failure; the later ones must not crash kt.
    client.on('error', () => {});
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error): void => { pf.destroy(); reject(e); };
      client.once('ready', () => { client.off('error', onError); turns.done(); pf.off('data', turns.in); resolve(); });
      client.once('error', onError);
      client.connect({
        sock: pf,
        username: SSH_USER,
        privateKey: keys.clientPrivate,
        // Straight to the session key: ssh2 would first try "none", one round trip for nothing.
        // Hostbased carries the signature in its first request (see shadow/ssh/ssh-auth.ts);
        // publickey, a round trip longer, is for shadow images from before it.
        authHandler: ['hostbased', 'publickey'],
        localHostname: 'kt',
        localUsername: SSH_USER,
        hostVerifier: pinnedHostVerifier(keys.hostPublicBlob),
        readyTimeout: 10_000,
        keepaliveInterval: 5_000,
        keepaliveCountMax: 3,
        algorithms: {
          // AES-GCM runs in OpenSSL through node:crypto: the fastest choice without native add-ons.
          cipher: ['aes128-gcm@openssh.com', 'aes256-gcm@openssh.com', 'chacha20-poly1305@openssh.com', 'aes128-ctr'],
        },
      });
    });
    this.#pf = pf;
    this.#client = client;
    const lost = (why: string): void => {
      if (this.#client !== client) return;
      this.#client = undefined;
      pf.destroy();
      this.#lost(why);
    };
    client.on('error', (e) => lost(e.message));
    client.on('close', () => lost('connection closed'));
    pf.on('close', () => lost('port-forward closed'));
    client.on('tcp connection', (info: TcpConnectionDetails, accept: AcceptConnection<ClientChannel>, reject: RejectConnection) => {
      const fwd = this.#forwards.get(info.destPort);
      if (!fwd) { reject(); return; }
      fwd.handler(info).then((local) => {
        const ch = accept();
        widenWindow(ch);
        this.#track(ch);
        // A forwarded caller and the local program: ends pass on, trouble takes both down.
        void joinStreams(ch, local, { halfClose: 'end', cut: 'destroy', onClose: 'unless-done' });
      }, () => reject());
    });
    try {
      for (const f of this.#forwards.values()) await this.#requestForward(client, f.bindAddr, f.port);
    } catch (e) {
      // The attempt failed: its connection goes with it, or every retry would leave one open.
      this.#client = undefined;
      client.end();
      pf.destroy();
      throw e;
    }
  }

  #lost(why: string): void {
    if (this.#state === 'closed' || this.#reconnecting) return;
    this.#lastError = why;
    this.#o.log.warn(`connection to the shadow lost (${why}); reconnecting`);
    this.#setState('reconnecting');
    void this.#reconnectLoop();
  }

  async #reconnectLoop(): Promise<void> {
    this.#reconnecting = true;
    const t0 = Date.now();
    const { log } = this.#o;
    for (let attempt = 0; this.#state !== 'closed'; attempt++) {
      try {
        await this.#o.pod.ensure();
        if (this.#isClosed()) return;
        await this.#connect();
        // Closed while connecting: 'up' now would reopen a tunnel the session has ended, and its
        // next loss would have ensure() recreate the shadow pod the session deleted.
        if (this.#isClosed()) { this.close(); return; }
        this.#reconnects++;
        this.#reconnecting = false;
        this.#setState('up');
        log.info(`reconnected to the shadow after ${((Date.now() - t0) / 1000).toFixed(1)}s`);
        return;
      } catch (e) {
        this.#lastError = (e as Error).message;
        log.debug(`reconnect attempt ${attempt + 1} failed: ${this.#lastError}`);
        await new Promise((r) => setTimeout(r, BACKOFF_MS[Math.min(attempt, BACKOFF_MS.length - 1)]));
      }
    }
  }

  #track(ch: ClientChannel): void {
    this.#open++;
    this.#total++;
    ch.once('close', () => { this.#open--; });
  }

  async #ready(): Promise<Client> {
    if (this.#state === 'closed') throw new Error('the tunnel is closed');
    if (this.#client && this.#state === 'up') return this.#client;
    const wait = this.#o.dialWaitMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#up,
      new Promise((_, reject) => { timer = setTimeout(() => reject(new Error(`the tunnel is reconnecting (${this.#lastError ?? 'connection lost'})`)), wait); }),
    ]).finally(() => clearTimeout(timer));
    if (!this.#client) throw new Error('the tunnel is not connected');
    return this.#client;
  }

  /** Opens a connection to host:port from inside the cluster (names resolve in the cluster). */
  readonly dial: Dialer = async (host, port) => {
    const client = await this.#ready();
    const trip = begin(`SSH connect to ${host}:${port} from the pod`);
    return new Promise<Duplex>((resolve, reject) => {
      client.forwardOut('127.0.0.1', 0, host, port, (err, ch) => {
        finish(trip);
        if (err) { reject(new Error(`cannot reach ${host}:${port} from the cluster: ${err.message}`, { cause: err })); return; }
        widenWindow(ch);
        this.#track(ch);
        resolve(ch);
      });
    });
  };

  #requestForward(client: Client, bindAddr: string, port: number): Promise<number> {
    const trip = begin(`SSH listen on ${port} in the pod`);
    return new Promise((resolve, reject) => {
      client.forwardIn(bindAddr, port, (err, bound) => {
        finish(trip);
        if (err) reject(new Error(`the shadow could not listen on ${bindAddr}:${port}: ${err.message}`));
        else resolve(bound || port);
      });
    });
  }

  /**
   * Asks the shadow to listen on port (in the pod) and hand each connection to handler. Survives
   * reconnects: the forward is registered again on every new connection.
   */
  async forwardIn(bindAddr: string, port: number, handler: ForwardHandler): Promise<number> {
    const client = await this.#ready();
    const bound = await this.#requestForward(client, bindAddr, port);
    this.#forwards.set(bound, { bindAddr, port: bound, handler });
    return bound;
  }

  /**
   * Opens a session channel running one of the shadow's commands (SHADOW_UDP, say); the channel
   * counts among the open ones. Rejects when the shadow refuses the command. Its window stays
   * ssh2's 2 MiB: UDP is not paced by the window, so a wider one would only hold more datagrams.
   */
  async exec(command: string): Promise<ClientChannel> {
    const client = await this.#ready();
    return new Promise((resolve, reject) => {
      client.exec(command, (err, ch) => {
        if (err) { reject(err); return; }
        this.#track(ch);
        resolve(ch);
      });
    });
  }

  /**
   * Runs the shadow's health command over the connection; resolves with the round trip in ms and
   * the contract version the shadow speaks (a bare pong: an older shadow, see SHADOW_PING).
   */
  async ping(): Promise<{ ms: number; contract: ContractVersion }> {
    const client = await this.#ready();
    const t0 = performance.now();
    const trip = begin('SSH ping', 2);
    return new Promise((resolve, reject) => {
      client.exec(SHADOW_PING.command, (err, ch) => {
        finish(trip);
        if (err) { reject(err); return; }
        let out = '';
        ch.on('data', (d: Buffer) => { out += d.toString(); });
        ch.on('close', () => {
          const contract = parsePingReply(out);
          if (contract) resolve({ ms: performance.now() - t0, contract });
          else reject(new Error(`unexpected ping reply: ${out}`));
        });
      });
    });
  }

  /** Closes the connection; the caller deletes the pod (see session cleanup). */
  close(): void {
    this.#setState('closed');
    this.#client?.end();
    this.#pf?.destroy();
    this.#client = undefined;
  }
}

