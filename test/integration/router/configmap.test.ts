// The ConfigMap route source against a fake Kubernetes API server on loopback (plain http: the
// base URL, token and CA are injectable): list then watch with a field selector on the name, live
// updates, invalid tables kept out, 410 Gone answered with a new list, errors and dropped
// connections retried with backoff, the bearer token re-read for every request.
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ROUTES_KEY } from '../../../contract/index.ts';
import type { RouteTable } from '../../../contract/index.ts';
import { configMapRouteSource } from '../../../router/route-source.ts';
import type { RouteSource } from '../../../router/route-source.ts';
import { startRouter } from '../../../router/router.ts';
import { createLogger } from '../../../runtime/log.ts';

const HOST = '127.0.0.1';
const NS = 'demo';
const NAME = 'kt-mesh-echo';

const table = (versions: string[]): RouteTable => ({
  header: 'kt-version',
  ports: [{ port: 8080, protocol: 'http' }],
  defaultTarget: 'echo.demo.svc.cluster.local',
  routes: versions.map((v) => ({ version: v, target: `echo-kt-${v.toLowerCase()}.demo.svc.cluster.local`, session: `s-${v}`, user: 'dev' })),
});

interface Seen {
  path: string;
  query: URLSearchParams;
  auth: string | undefined;
}

/** A fake API server holding one ConfigMap; tests script failures and push watch events. */
function fakeApi() {
  let rv = 100;
  let data: Record<string, string> | undefined = { [ROUTES_KEY]: JSON.stringify(table(['A'])) };
  const requests: Seen[] = [];
  const watches = new Set<ServerResponse>();
  /** Answers for the next requests (first in, first used), instead of the normal behaviour. */
  const scripted: ((req: IncomingMessage, res: ServerResponse) => void)[] = [];

  const object = () => ({ kind: 'ConfigMap', apiVersion: 'v1', metadata: { name: NAME, namespace: NS, resourceVersion: String(rv) }, data });
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake');
    requests.push({ path: url.pathname, query: url.searchParams, auth: req.headers.authorization });
    const script = scripted.shift();
    if (script) return script(req, res);
    if (url.pathname !== `/api/v1/namespaces/${NS}/configmaps` || url.searchParams.get('fieldSelector') !== `metadata.name=${NAME}`) {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 403, message: 'forbidden by the fake' }));
      return;
    }
    if (url.searchParams.get('watch') !== '1') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'ConfigMapList', metadata: { resourceVersion: String(rv) }, items: data ? [object()] : [] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
    res.flushHeaders();
    // Like the real thing: a watch from an older version first gets what it missed.
    if (data && Number(url.searchParams.get('resourceVersion')) < rv) res.write(`${JSON.stringify({ type: 'MODIFIED', object: object() })}\n`);
    watches.add(res);
    res.on('close', () => watches.delete(res));
  });

  const send = (event: unknown): void => {
    for (const res of watches) res.write(`${JSON.stringify(event)}\n`);
  };
  return {
    server,
    requests,
    watches,
    scripted,
    get rv() {
      return rv;
    },
    /** Changes the ConfigMap and tells the open watches. */
    modify(routes: string) {
      rv++;
      data = { [ROUTES_KEY]: routes };
      send({ type: 'MODIFIED', object: object() });
    },
    /** Changes the ConfigMap without telling anyone (as if the watch missed it). */
    modifySilently(routes: string) {
      rv += 10;
      data = { [ROUTES_KEY]: routes };
    },
    remove() {
      rv++;
      const last = object();
      data = undefined;
      send({ type: 'DELETED', object: last });
    },
    send,
    dropWatches() {
      for (const res of watches) res.socket?.destroy();
    },
  };
}

async function eventually<T>(what: string, check: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

let api: ReturnType<typeof fakeApi>;
let base: string;
let source: RouteSource | undefined;
const logs: Record<string, unknown>[] = [];
const log = createLogger({ write: (line) => logs.push(JSON.parse(line) as Record<string, unknown>) });
let tokenCount = 0;

const makeSource = (): RouteSource =>
  configMapRouteSource({
    namespace: NS,
    name: NAME,
    apiServer: base,
    token: async () => `token-${++tokenCount}`,
    log,
    backoff: { initialMs: 20, maxMs: 100 },
  });

beforeEach(async () => {
  api = fakeApi();
  api.server.listen(0, HOST);
  await once(api.server, 'listening');
  const address = api.server.address();
  base = `http://${HOST}:${typeof address === 'object' && address !== null ? address.port : 0}`;
  logs.length = 0;
});

afterEach(async () => {
  await source?.close();
  source = undefined;
  api.server.closeAllConnections();
  api.server.close();
});

describe('configMapRouteSource', () => {
  it('lists, then watches from the list version with the name selector and a fresh token', async () => {
    const tables: RouteTable[] = [];
    source = makeSource();
    source.start((t) => tables.push(t));
    await eventually('the first table', () => tables[0]);
    expect(tables[0]).toEqual(table(['A']));
    await eventually('the watch', () => (api.watches.size > 0 ? true : undefined));
    const [list, watch] = api.requests;
    expect(list?.path).toBe(`/api/v1/namespaces/${NS}/configmaps`);
    expect(list?.query.get('fieldSelector')).toBe(`metadata.name=${NAME}`);
    expect(list?.query.get('watch')).toBeNull();
    expect(watch?.query.get('fieldSelector')).toBe(`metadata.name=${NAME}`);
    expect(watch?.query.get('watch')).toBe('1');
    expect(watch?.query.get('resourceVersion')).toBe(String(api.rv));
    expect([list?.auth, watch?.auth]).toEqual(['Bearer token-1', 'Bearer token-2']);

    api.modify(JSON.stringify(table(['A', 'B'])));
    await eventually('the second table', () => tables[1]);
    expect(tables[1]).toEqual(table(['A', 'B']));
  });

  it('keeps invalid tables out and says so', async () => {
    const tables: RouteTable[] = [];
    source = makeSource();
    source.start((t) => tables.push(t));
    await eventually('the watch', () => (api.watches.size > 0 ? true : undefined));
    api.modify('{"header": 42}');
    await eventually('the error', () => logs.find((l) => l.msg === 'route table invalid; keeping the current table'));
    api.modify(JSON.stringify(table(['C'])));
    await eventually('the next good table', () => tables[1]);
    expect(tables).toEqual([table(['A']), table(['C'])]);
  });

  it('lists again after 410 Gone, as an event or as the watch status', async () => {
    const tables: RouteTable[] = [];
    source = makeSource();
    source.start((t) => tables.push(t));
    await eventually('the watch', () => (api.watches.size > 0 ? true : undefined));

    api.modifySilently(JSON.stringify(table(['G1'])));
    api.send({ type: 'ERROR', object: { kind: 'Status', code: 410, reason: 'Expired', message: 'too old resource version' } });
    await eventually('the table from the new list', () => tables[1]);
    expect(tables[1]).toEqual(table(['G1']));

    // Next watch: 410 as the HTTP status.
    api.scripted.push((_req, res) => {
      res.writeHead(410, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 410, message: 'gone' }));
    });
    const before = api.requests.length;
    api.modifySilently(JSON.stringify(table(['G2'])));
    api.dropWatches();
    await eventually('the table from the second new list', () => tables[2]);
    expect(tables[2]).toEqual(table(['G2']));
    await eventually('the watch after the list', () => (api.requests.length - before >= 3 ? true : undefined));
    const after = api.requests.slice(before).map((r) => (r.query.get('watch') === '1' ? 'watch' : 'list'));
    expect(after).toEqual(['watch', 'list', 'watch']);
  });

  it('retries errors and dropped watches with backoff, from the last version, keeping the table', async () => {
    const tables: RouteTable[] = [];
    source = makeSource();
    source.start((t) => tables.push(t));
    await eventually('the watch', () => (api.watches.size > 0 ? true : undefined));
    api.modify(JSON.stringify(table(['B'])));
    await eventually('the table', () => tables[1]);
    const version = String(api.rv);

    for (let i = 0; i < 3; i++) {
      api.scripted.push((_req, res) => {
        res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ kind: 'Status', code: 500, message: 'etcd is having a day' }));
      });
    }
    const before = api.requests.length;
    api.dropWatches();
    await eventually('the watch to be back', () => logs.find((l) => l.msg === 'route source reconnected'));
    const retries = api.requests.slice(before);
    expect(retries.length).toBe(4);
    expect(retries.every((r) => r.query.get('watch') === '1' && r.query.get('resourceVersion') === version)).toBe(true);
    const warnings = logs.filter((l) => l.msg === 'route source error; retrying');
    expect(warnings.map((w) => w.error)).toContain(`watch configmap ${NS}/${NAME}: HTTP 500: etcd is having a day`);

    api.remove();
    await eventually('the deletion warning', () => logs.find((l) => l.msg === 'route table ConfigMap deleted; keeping the current table'));
    expect(tables).toHaveLength(2);
  });

  it('reports an API error without a table and recovers when the ConfigMap appears', async () => {
    api.scripted.push((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ kind: 'Status', code: 403, message: 'configmaps "kt-mesh-echo" is forbidden' }));
    });
    const tables: RouteTable[] = [];
    source = makeSource();
    source.start((t) => tables.push(t));
    await eventually('the table after the retry', () => tables[0]);
    expect(logs.find((l) => l.msg === 'route source error; retrying')?.error).toMatch(/HTTP 403: configmaps "kt-mesh-echo" is forbidden/);
  });
});

describe('the router on a ConfigMap', () => {
  it('gets ready once the table arrives and follows changes', async () => {
    api.scripted.push((_req, res) => {
      res.writeHead(503);
      res.end();
    });
    source = makeSource();
    const router = await startRouter({ source, log, host: HOST, healthPort: 0, listenPort: () => 0 });
    try {
      expect(router.notReady()).toMatch(/no route table|not listening/);
      await router.ready();
      expect(router.table()).toEqual(table(['A']));
      api.modify(JSON.stringify(table(['A', 'Z'])));
      await eventually('the new table', () => (router.table()?.routes.length === 2 ? true : undefined));
      expect(logs.find((l) => l.msg === 'route table changed')).toMatchObject({ added: [{ version: 'Z' }], removed: [] });
    } finally {
      await router.close(200);
      source = undefined;
    }
  });
});
