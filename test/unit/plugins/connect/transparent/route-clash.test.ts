import { describe, expect, it } from 'vitest';
import { describeRoute, parseIpRoutes, planCapture, type SystemRoute } from '../../../../../plugins/connect/transparent/route-clash.ts';
import { classifyName, shortClusterNames } from '../../../../../plugins/connect/transparent/local-dns.ts';

// As `ip -j -4 route show table all` prints them on a laptop with a WireGuard-like VPN.
const IP_JSON = JSON.stringify([
  { dst: 'default', gateway: '192.168.1.1', dev: 'wlan0', flags: [] },
  { dst: '192.168.1.0/24', dev: 'wlan0', protocol: 'kernel', scope: 'link', prefsrc: '192.168.1.20', flags: [] },
  { dst: '10.244.0.240/28', dev: 'wg0', scope: 'link', flags: [] },
  { dst: '10.244.0.0/24', dev: 'lo', scope: 'link', flags: [] },
  { dst: '10.201.0.1', gateway: '10.202.0.1', dev: 'eth0', flags: [] },
  { dst: '100.64.0.0/10', dev: 'tailscale0', table: '52', flags: [] },
  { type: 'local', dst: '127.0.0.0/8', dev: 'lo', table: 'local', flags: [] },
  { type: 'broadcast', dst: '192.168.1.255', dev: 'wlan0', table: 'local', flags: [] },
  { type: 'unreachable', dst: '10.99.0.0/16', flags: [] },
]);

const wg: SystemRoute = { dst: '10.244.0.240/28', dev: 'wg0', type: 'unicast' };
const corp: SystemRoute = { dst: '10.0.0.0/8', dev: 'tun0', type: 'unicast', gateway: '10.8.0.1' };

describe('the machine\'s routes', () => {
  it('keeps unicast IPv4 routes of other interfaces, in every table, and nothing via lo, local, broadcast or default', () => {
    expect(parseIpRoutes(IP_JSON)).toEqual([
      { dst: '192.168.1.0/24', dev: 'wlan0', type: 'unicast' },
      { dst: '10.244.0.240/28', dev: 'wg0', type: 'unicast' },
      { dst: '10.201.0.1', dev: 'eth0', type: 'unicast', gateway: '10.202.0.1' },
      { dst: '100.64.0.0/10', dev: 'tailscale0', type: 'unicast', table: '52' },
    ]);
    expect(parseIpRoutes('not json')).toEqual([]);
    expect(parseIpRoutes('{}')).toEqual([]);
  });

  it('names a route as ip route prints it', () => {
    expect(describeRoute(corp)).toBe('10.0.0.0/8 via 10.8.0.1 dev tun0');
    expect(describeRoute({ dst: '100.64.0.0/10', dev: 'tailscale0', table: '52' })).toBe('100.64.0.0/10 dev tailscale0 table 52');
    expect(describeRoute({ dst: '10.201.0.1', dev: 'eth0' })).toBe('10.201.0.1/32 dev eth0');
  });
});

describe('ranges against routes', () => {
  const ranges = ['10.96.0.0/12', '10.244.0.0/24'];

  it('captures every range when no route of another interface overlaps', () => {
    expect(planCapture({ ranges, include: [], exclude: ['10.201.0.1'], routes: parseIpRoutes(IP_JSON).filter((r) => r.dev !== 'wg0') }))
      .toEqual({ cidrs: ranges, leftOut: [], lines: [] });
  });

  it('leaves out a more specific route of another interface, in one line that says how to force it', () => {
    expect(planCapture({ ranges, include: [], exclude: [], routes: [wg] })).toEqual({
      cidrs: ranges,
      leftOut: ['10.244.0.240/28'],
      lines: ['leaving 10.244.0.240/28 out of 10.244.0.0/24: the route 10.244.0.240/28 dev wg0 claims it (a VPN?); pass --include-cidr 10.244.0.240/28 to send it to the cluster anyway'],
    });
  });

  it('captures it when --include-cidr names it, and says so once', () => {
    expect(planCapture({ ranges, include: ['10.244.0.240/28'], exclude: [], routes: [wg] })).toEqual({
      cidrs: [...ranges, '10.244.0.240/28'],
      leftOut: [],
      lines: ['capturing 10.244.0.240/28 although the route 10.244.0.240/28 dev wg0 covers it (named by --include-cidr)'],
    });
  });

  it('an --include-cidr that only contains the route does not force it', () => {
    expect(planCapture({ ranges, include: ['10.244.0.0/16'], exclude: [], routes: [wg] }).leftOut).toEqual(['10.244.0.240/28']);
  });

  it('says nothing of a route already excluded', () => {
    expect(planCapture({ ranges, include: [], exclude: ['10.244.0.192/26'], routes: [wg] })).toEqual({ cidrs: ranges, leftOut: [], lines: [] });
  });

  it('refuses a range a route of another interface covers whole, naming the route and both ways out', () => {
    const plan = planCapture({ ranges, include: [], exclude: [], routes: [corp] });
    expect(plan.refusal).toBe('the cluster range 10.96.0.0/12 lies inside the route 10.0.0.0/8 via 10.8.0.1 dev tun0 of another interface (a VPN?), so capturing it would take that traffic away; pass --include-cidr 10.96.0.0/12 to capture it anyway, or --exclude-cidr 10.96.0.0/12 to leave it out.');
    expect(planCapture({ ranges, include: [], exclude: [], routes: [{ dst: '10.244.0.0/24', dev: 'eth1' }] }).refusal)
      .toMatch(/^the cluster range 10\.244\.0\.0\/24 lies inside the route 10\.244\.0\.0\/24 dev eth1 /);
  });

  it('captures a covered range named by --include-cidr, and drops one named by --exclude-cidr', () => {
    expect(planCapture({ ranges, include: ['10.96.0.0/12', '10.244.0.0/24'], exclude: [], routes: [corp] })).toEqual({
      cidrs: ranges,
      leftOut: [],
      lines: [
        'capturing 10.96.0.0/12 although the route 10.0.0.0/8 via 10.8.0.1 dev tun0 covers it (named by --include-cidr)',
        'capturing 10.244.0.0/24 although the route 10.0.0.0/8 via 10.8.0.1 dev tun0 covers it (named by --include-cidr)',
      ],
    });
    const plan = planCapture({ ranges, include: [], exclude: ['10.0.0.0/8'], routes: [corp] });
    expect(plan.refusal).toBeUndefined();
  });

  it('never counts the default route, and leaves IPv6 ranges to the IPv6 side', () => {
    expect(planCapture({ ranges: [...ranges, 'fd00::/108'], include: [], exclude: [], routes: [{ dst: '0.0.0.0/0', dev: 'eth0' }] }).refusal).toBeUndefined();
  });
});

describe('the DNS side takes no names outside the cluster', () => {
  const known = new Set(['default', 'team-a']);
  const rules = { clusterDomain: 'cluster.local', isClusterName: shortClusterNames(() => known, 'team-a') };
  const unknown = { clusterDomain: 'cluster.local', isClusterName: shortClusterNames(() => undefined, 'team-a') };

  it('sends example.com, corp.internal and other names upstream', () => {
    for (const name of ['example.com', 'corp.internal', 'www.example.com.', 'a.b.c.d', 'host.corp.internal', 'x.team-a.svc.other']) {
      expect(classifyName(name, rules), name).toBe('upstream');
      expect(classifyName(name, unknown), name).toBe('upstream');
    }
  });

  it('sends the cluster domain, Services and svc.ns of namespaces that exist to the cluster', () => {
    for (const name of ['echo', 'echo.team-a', 'echo.default.svc', 'echo.default.svc.cluster.local', 'cluster.local']) {
      expect(classifyName(name, rules), name).toBe('cluster');
    }
    expect(classifyName('echo.nosuch', rules)).toBe('upstream');
  });

  it('only the session\'s own namespace counts while the namespaces cannot be listed', () => {
    expect(classifyName('echo.team-a', unknown)).toBe('cluster');
    expect(classifyName('echo.default', unknown)).toBe('upstream');
  });

  it('namespaces named with --namespaces count too, listed or not', () => {
    const named = { clusterDomain: 'cluster.local', isClusterName: shortClusterNames(() => undefined, 'team-a', ['team-b']) };
    expect(classifyName('echo.team-b', named)).toBe('cluster');
    expect(classifyName('echo.team-b.svc', named)).toBe('cluster');
    expect(classifyName('echo.default', named)).toBe('upstream');
    expect(classifyName('example.com', named)).toBe('upstream');
  });
});
