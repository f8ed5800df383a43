// Runs the router for bench/router.ts on 127.0.0.1: the routes file's table ports are bound as
// given, and table host names are dialled at the loopback ports given in DIAL_JSON
// ({"host": {"tablePort": loopbackPort}}), so the backends need not share the table's ports.
//   node bench/tools/router-run.ts ROUTES_FILE HEALTH_PORT DIAL_JSON [fast|native|http-proxy-3]
// Prints {"ready": true, "ports": {...}} once every port listens.
import { fileRouteSource } from '../../router/route-source.ts';
import { startRouter } from '../../router/router.ts';
import { createLogger } from '../../runtime/log.ts';

const [file, health, dialJson, forwarder = 'fast'] = process.argv.slice(2);
if (!file || !health || !dialJson || (forwarder !== 'fast' && forwarder !== 'native' && forwarder !== 'http-proxy-3')) {
  console.error('usage: node bench/tools/router-run.ts ROUTES_FILE HEALTH_PORT DIAL_JSON [fast|native|http-proxy-3]');
  process.exit(2);
}
const dialMap = JSON.parse(dialJson) as Record<string, Record<string, number>>;
const log = createLogger({ level: 'warn', write: (line) => process.stderr.write(`${line}\n`) });
const router = await startRouter({
  source: fileRouteSource({ path: file, log }),
  log,
  host: '127.0.0.1',
  healthPort: Number(health),
  http1Forwarder: forwarder,
  dial: (host, port) => ({ host: '127.0.0.1', port: dialMap[host]?.[String(port)] ?? port }),
});
await router.ready();
console.log(JSON.stringify({ ready: true, ports: Object.fromEntries(router.ports.traffic) }));
process.on('SIGTERM', () => {
  void router.close(500).then(() => process.exit(0));
});
