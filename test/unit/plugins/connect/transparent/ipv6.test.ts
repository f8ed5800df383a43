// Transparent mode where the cluster has IPv6 ranges. The local cluster is IPv4 only, so the
// dual-stack and IPv6-only cases are checked here as exact plans: the ranges learned from the API
// server, the clash check against IPv6 routes, and the iptables and ip6tables rules.
import { describe, expect, it } from 'vitest';
import type { Kube } from '../../../../../plugins/kube/kube.ts';
import type { Logger } from '../../../../../plugins/cli/log.ts';
import { addressInCidr, around, capturedOf, cidrContains, ipInCidr, normalizeCidr, parseCidr } from '../../../../../plugins/connect/transparent/cidr.ts';
import { apiServerAddresses, clusterRanges, PROBE_CLUSTER_IP, rangesInMessage } from '../../../../../plugins/connect/transparent/cluster-ranges.ts';
import { parseIpRoutes, planCapture } from '../../../../../plugins/connect/transparent/route-clash.ts';
import { captureFromSaved, installScript, planRules, removalScript, parseSavedChains } from '../../../../../plugins/connect/transparent/transparent.ts';
import { findOriginalDst, parseConntrackLine } from '../../../../../plugins/connect/transparent/original-dst.ts';

const log = { debug: () => {}, info: () => {}, warn: () => {}, progress: () => {} } as unknown as Logger;

/** The API server's refusal of a dry-run Service, as client-node hands it over (422, JSON body). */
const refusal = (message: string): { code: number; body: string } => ({ code: 422, body: JSON.stringify({ kind: 'Status', message, reason: 'Invalid', code: 422 }) });
const notInRange = (ip: string, range: string) => refusal(`Service "kt-range-probe" is invalid: spec.clusterIPs: Invalid value: []string{"${ip}"}: failed to allocate IP ${ip}: the provided IP (${ip}) is not in the valid range. The range of valid IPs is ${range}`);
const noFamily = (ip: string, family: string) => refusal(`Service "kt-range-probe" is invalid: spec.clusterIPs[0]: Invalid value: []string{"${ip}"}: ${family} is not configured on this cluster`);

interface FakeCluster {
  /** What the API server says to a dry-run Service with each probe ClusterIP. */
  probe: Record<string, ReturnType<typeof refusal>>;
  /** Node pod ranges, or undefined when nodes may not be read. */
  nodes?: string[][];
  pods?: { podIP?: string; podIPs?: string[] }[];
  services?: { clusterIP?: string; clusterIPs?: string[] }[];
}

function fakeKube(c: FakeCluster): Kube {
  const forbidden = { code: 403, body: '{"reason":"Forbidden"}' };
  const core = {
    createNamespacedService: ({ body }: { body: { spec: { clusterIP: string } } }) => Promise.reject(c.probe[body.spec.clusterIP] ?? forbidden),
    listNode: () => (c.nodes ? Promise.resolve({ items: c.nodes.map((podCIDRs) => ({ spec: { podCIDR: podCIDRs[0], podCIDRs } })) }) : Promise.reject(forbidden)),
    listNamespacedPod: () => Promise.resolve({ items: (c.pods ?? []).map((p) => ({ spec: {}, status: { podIP: p.podIP, podIPs: p.podIPs?.map((ip) => ({ ip })) } })) }),
    listNamespacedService: () => Promise.resolve({ items: (c.services ?? []).map((spec) => ({ spec })) }),
  };
  return { namespace: 'dev', server: 'https://[fd00:10:201::1]:6443', core } as unknown as Kube;
}

describe('address ranges of both families', () => {
  it('are written as iptables-save and ip6tables-save print them', () => {
    expect(normalizeCidr('10.96.7.7/16')).toBe('10.96.0.0/16');
    expect(normalizeCidr('fd00:10:96:0:0:0:0:a/112')).toBe('fd00:10:96::/112');
    expect(normalizeCidr('FD00:10:96::7')).toBe('fd00:10:96::7/128');
    expect(normalizeCidr('2001:db8:0:0:1:0:0:1')).toBe('2001:db8::1:0:0:1/128');
    expect(normalizeCidr('::ffff:10.1.2.3/120')).toBe('::ffff:10.1.2.0/120');
    expect(normalizeCidr('::/0')).toBe('::/0');
    expect(normalizeCidr('fd00::/64', 4)).toBeUndefined();
    expect(normalizeCidr('10.0.0.0/8', 6)).toBeUndefined();
    for (const bad of ['fd00::/129', 'fd00:::1/64', 'fd00::/64/1', '10.0.0.0/33', 'x', '']) expect(normalizeCidr(bad), bad).toBeUndefined();
  });

  it('contain and hold addresses only of their own family', () => {
    expect(cidrContains(parseCidr('fd00:10::/32')!, parseCidr('fd00:10:96::/112')!)).toBe(true);
    expect(cidrContains(parseCidr('fd00:10:96::/112')!, parseCidr('fd00:10::/32')!)).toBe(false);
    expect(cidrContains(parseCidr('::/0')!, parseCidr('10.0.0.0/8')!)).toBe(false);
    expect(ipInCidr('fd00:10:96::a', 'fd00:10:96::/112')).toBe(true);
    expect(ipInCidr('fd00:10:97::a', 'fd00:10:96::/112')).toBe(false);
    expect(ipInCidr('10.96.0.1', '::/0')).toBe(false);
    expect(addressInCidr('fd00:10:96::/112', 1)).toBe('fd00:10:96::1');
    expect(addressInCidr('10.96.0.0/16', 1)).toBe('10.96.0.1');
    expect(around('fd00:10:244:1::5')).toBe('fd00:10:244:1::/64');
    expect(around('10.244.0.7')).toBe('10.244.0.0/16');
  });

  it('a range wholly inside an excluded one is not captured; one only partly inside still is', () => {
    expect(capturedOf(['10.96.0.0/16', 'fd00:10:96::/112', 'fd00:10:244::/56'], ['fd00:10:96::/108', 'fd00:10:244:5::/64'], 6)).toEqual(['fd00:10:244::/56']);
    expect(capturedOf(['10.96.0.0/16', 'fd00:10:96::/112'], [], 4)).toEqual(['10.96.0.0/16']);
  });
});

describe('the ranges a cluster has, learned with namespace rights', () => {
  it('asks with one ClusterIP per family that no range holds', () => {
    expect(PROBE_CLUSTER_IP).toEqual({ 4: '0.0.0.1', 6: '100::1' });
    expect(rangesInMessage(notInRange('100::1', 'fd00:10:96::/112').body, 6)).toEqual(['fd00:10:96::/112']);
    expect(rangesInMessage(notInRange('100::1', 'fd00:10:96::/112, fd00:10:97::/112').body, 6)).toEqual(['fd00:10:96::/112', 'fd00:10:97::/112']);
    expect(rangesInMessage(notInRange('0.0.0.1', '10.96.0.0/16').body, 6)).toEqual([]);
    expect(rangesInMessage(noFamily('100::1', 'IPv6').body, 6)).toEqual([]);
  });

  it('an IPv6-only cluster: the service range from the IPv6 probe, the pod ranges from the nodes', async () => {
    const kube = fakeKube({
      probe: { '0.0.0.1': noFamily('0.0.0.1', 'IPv4'), '100::1': notInRange('100::1', 'fd00:10:96::/112') },
      nodes: [['fd00:10:244::/64'], ['fd00:10:244:1::/64']],
    });
    expect(await clusterRanges(kube, log)).toEqual({ serviceCidrs: ['fd00:10:96::/112'], podCidrs: ['fd00:10:244::/64', 'fd00:10:244:1::/64'] });
  });

  it('a dual-stack cluster: both service ranges, both pod ranges of each node', async () => {
    const kube = fakeKube({
      probe: { '0.0.0.1': notInRange('0.0.0.1', '10.96.0.0/16'), '100::1': notInRange('100::1', 'fd00:10:96::/112') },
      nodes: [['10.244.0.0/24', 'fd00:10:244::/64'], ['10.244.1.0/24', 'fd00:10:244:1::/64']],
    });
    expect(await clusterRanges(kube, log)).toEqual({
      serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/112'],
      podCidrs: ['10.244.0.0/24', 'fd00:10:244::/64', '10.244.1.0/24', 'fd00:10:244:1::/64'],
    });
  });

  it('without the probe\'s answer or nodes: covers around the ClusterIPs and pod IPs of both families (/16, /64)', async () => {
    const kube = fakeKube({
      probe: {},
      services: [{ clusterIP: '10.96.4.5', clusterIPs: ['10.96.4.5', 'fd00:10:96::45'] }, { clusterIP: 'None' }],
      pods: [{ podIP: '10.244.0.7', podIPs: ['10.244.0.7', 'fd00:10:244::7'] }, { podIP: 'fd00:10:244:1::9' }],
    });
    expect(await clusterRanges(kube, log)).toEqual({
      serviceCidrs: ['10.96.0.0/16', 'fd00:10:96::/64'],
      podCidrs: ['10.244.0.0/16', 'fd00:10:244::/64', 'fd00:10:244:1::/64'],
    });
  });

  it('an API server with an IPv6 address is never captured', async () => {
    expect(await apiServerAddresses('https://[fd00:10:201::1]:6443')).toEqual(['fd00:10:201::1']);
  });
});

// As `ip -j -6 route show table all` prints them: a laptop on an IPv6 LAN with a VPN that owns part
// of the cluster's IPv6 pod range, and link-local, multicast and local routes on every interface.
const IP6_JSON = JSON.stringify([
  { dst: '2001:db8:1::/64', dev: 'wlan0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'fd00:10:244:1::/64', dev: 'wg0', metric: 1024, flags: [], pref: 'medium' },
  { dst: 'fe80::/64', dev: 'wlan0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'fe80::/64', dev: 'wg0', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'default', gateway: 'fe80::1', dev: 'wlan0', metric: 1024, flags: [], pref: 'medium' },
  { type: 'local', dst: '::1', dev: 'lo', table: 'local', protocol: 'kernel', metric: 0, flags: [], pref: 'medium' },
  { type: 'multicast', dst: 'ff00::/8', dev: 'wlan0', table: 'local', protocol: 'kernel', metric: 256, flags: [], pref: 'medium' },
  { dst: 'fd00:10:96::/112', dev: 'lo', metric: 1024, flags: [], pref: 'medium' },
]);

describe('IPv6 ranges against IPv6 routes', () => {
  it('keeps unicast IPv6 routes of other interfaces; link-local, multicast, local, lo and default never count', () => {
    expect(parseIpRoutes(IP6_JSON)).toEqual([
      { dst: '2001:db8:1::/64', dev: 'wlan0', type: 'unicast' },
      { dst: 'fd00:10:244:1::/64', dev: 'wg0', type: 'unicast' },
    ]);
  });

  it('leaves out the part a VPN route claims, and refuses a range a route covers whole, naming it', () => {
    const routes = parseIpRoutes(IP6_JSON);
    expect(planCapture({ ranges: ['fd00:10:96::/112', 'fd00:10:244::/56'], include: [], exclude: [], routes })).toEqual({
      cidrs: ['fd00:10:96::/112', 'fd00:10:244::/56'],
      leftOut: ['fd00:10:244:1::/64'],
      lines: ['leaving fd00:10:244:1::/64 out of fd00:10:244::/56: the route fd00:10:244:1::/64 dev wg0 claims it (a VPN?); pass --include-cidr fd00:10:244:1::/64 to send it to the cluster anyway'],
    });
    const corp = { dst: 'fd00::/8', dev: 'tun0', type: 'unicast', gateway: 'fd99::1' };
    expect(planCapture({ ranges: ['10.96.0.0/16', 'fd00:10:96::/112'], include: [], exclude: [], routes: [corp] }).refusal)
      .toBe('the cluster range fd00:10:96::/112 lies inside the route fd00::/8 via fd99::1 dev tun0 of another interface (a VPN?), so capturing it would take that traffic away; pass --include-cidr fd00:10:96::/112 to capture it anyway, or --exclude-cidr fd00:10:96::/112 to leave it out.');
    // An IPv4 route never clashes with an IPv6 range, nor the reverse.
    expect(planCapture({ ranges: ['fd00:10:96::/112'], include: [], exclude: [], routes: [{ dst: '0.0.0.0/1', dev: 'tun0', type: 'unicast' }] }).refusal).toBeUndefined();
    expect(planCapture({ ranges: ['10.96.0.0/16'], include: [], exclude: [], routes: [corp] }).refusal).toBeUndefined();
  });
});

/** What start.ts and startTransparent do with the ranges: one plan per family, listeners on 127.0.0.1:40001 and [::1]:40002. */
function tablesFor(ranges: string[], apiServer: string[], routes = parseIpRoutes(IP6_JSON)): { v4: string; v6: string | undefined; lines: string[] } {
  const clash = planCapture({ ranges, include: [], exclude: apiServer, routes });
  const exclude = [...apiServer, ...clash.leftOut];
  const ipv6 = capturedOf(clash.cidrs, exclude, 6);
  const v4 = installScript(planRules({ sessionId: 'dual0123456789', cidrs: clash.cidrs, exclude, port: 40001 }));
  const v6 = ipv6.length > 0 ? installScript(planRules({ sessionId: 'dual0123456789', cidrs: ipv6, exclude, port: 40002, family: 6 })) : undefined;
  return { v4, v6, lines: clash.lines };
}

/** The iptables-restore script of chain KT-dual0123 with these rules, jumped to first from nat OUTPUT. */
const script = (...rules: string[]): string => [
  '*nat',
  ':KT-dual0123 - [0:0]',
  ...rules.map((r) => `-A KT-dual0123 ${r}`),
  '-I OUTPUT 1 -p tcp -m comment --comment kt-session=dual0123456789 -j KT-dual0123',
  'COMMIT',
  '',
].join('\n');

describe('the capture rules', () => {
  it('a dual-stack cluster: the IPv4 ranges in iptables, the IPv6 ranges in ip6tables, each never capturing loopback, link-local or the API server', () => {
    const plan = tablesFor(['10.96.0.0/16', 'fd00:10:96::/112', '10.244.0.0/24', 'fd00:10:244::/56'], ['10.201.0.1', 'fd00:10:201::1']);
    expect(plan.v4).toBe(script(
      '-d 127.0.0.0/8 -j RETURN',
      '-d 10.201.0.1/32 -j RETURN',
      '-d 10.96.0.0/16 -p tcp -j REDIRECT --to-ports 40001',
      '-d 10.244.0.0/24 -p tcp -j REDIRECT --to-ports 40001',
    ));
    expect(plan.v6).toBe(script(
      '-d ::1/128 -j RETURN',
      '-d fe80::/10 -j RETURN',
      '-d fd00:10:201::1/128 -j RETURN',
      '-d fd00:10:244:1::/64 -j RETURN',
      '-d fd00:10:96::/112 -p tcp -j REDIRECT --to-ports 40002',
      '-d fd00:10:244::/56 -p tcp -j REDIRECT --to-ports 40002',
    ));
    expect(plan.lines).toEqual(['leaving fd00:10:244:1::/64 out of fd00:10:244::/56: the route fd00:10:244:1::/64 dev wg0 claims it (a VPN?); pass --include-cidr fd00:10:244:1::/64 to send it to the cluster anyway']);
  });

  it('an IPv6-only cluster: everything in ip6tables; the iptables chain redirects nothing', () => {
    const plan = tablesFor(['fd00:10:96::/112', 'fd00:10:244::/64'], ['fd00:10:201::1'], []);
    expect(plan.v4).toBe(script('-d 127.0.0.0/8 -j RETURN'));
    expect(plan.v6).toBe(script(
      '-d ::1/128 -j RETURN',
      '-d fe80::/10 -j RETURN',
      '-d fd00:10:201::1/128 -j RETURN',
      '-d fd00:10:96::/112 -p tcp -j REDIRECT --to-ports 40002',
      '-d fd00:10:244::/64 -p tcp -j REDIRECT --to-ports 40002',
    ));
  });

  it('an IPv4 cluster gets no ip6tables plan at all', () => {
    expect(tablesFor(['10.96.0.0/16', '10.244.0.0/24'], ['10.201.0.1']).v6).toBeUndefined();
  });

  it('::/0 is never captured, and an IPv6 range wholly excluded is not planned', () => {
    expect(() => planRules({ sessionId: 's', cidrs: ['::/0'], exclude: [], port: 1, family: 6 })).toThrow('cluster CIDR ::/0 would capture every IPv6 destination; kt never captures it');
    expect(tablesFor(['10.96.0.0/16', 'fd00:10:96::/112'], ['fd00:10:96::/108']).v6).toBeUndefined();
    expect(() => planRules({ sessionId: 's', cidrs: ['fd00::/200'], exclude: [], port: 1, family: 6 })).toThrow(/cluster CIDR "fd00::\/200" is not an IP address or CIDR/);
  });

  it('reads an ip6tables-save chain back: what it captures, and the script that removes it', () => {
    const saved = [
      '# Generated by ip6tables-save v1.8.9 (nf_tables)',
      '*nat',
      ':PREROUTING ACCEPT [0:0]',
      ':OUTPUT ACCEPT [0:0]',
      ':KT-dual0123 - [0:0]',
      '-A OUTPUT -p tcp -m comment --comment "kt-session=dual0123456789" -j KT-dual0123',
      '-A KT-dual0123 -d ::1/128 -j RETURN',
      '-A KT-dual0123 -d fe80::/10 -j RETURN',
      '-A KT-dual0123 -d fd00:10:96::5/128 -j RETURN',
      '-A KT-dual0123 -d fd00:10:96::/112 -p tcp -j REDIRECT --to-ports 40002',
      'COMMIT',
    ].join('\n');
    expect(captureFromSaved(saved, 'fd00:10:96::a')).toEqual({ chain: 'KT-dual0123', sessionId: 'dual0123456789', cidr: 'fd00:10:96::/112', port: 40002 });
    for (const ip of ['fd00:10:96::5', '::1', 'fe80::1', 'fd00:10:97::1', '10.96.0.1']) expect(captureFromSaved(saved, ip), ip).toBeUndefined();
    expect(removalScript(parseSavedChains(saved))).toBe([
      '*nat',
      '-D OUTPUT -p tcp -m comment --comment "kt-session=dual0123456789" -j KT-dual0123',
      '-F KT-dual0123',
      '-X KT-dual0123',
      'COMMIT',
      '',
    ].join('\n'));
  });
});

describe('the original destination of a redirected IPv6 connection', () => {
  it('is read from /proc/net/nf_conntrack (addresses written in full) as the sockets show them (compressed)', () => {
    // Captured from a REDIRECT to [::1]:4444 of a connection to [fd00:10:96::a]:80 (ip6tables, nf_tables).
    const line = 'ipv6     10 tcp      6 431999 ESTABLISHED src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0010:0096:0000:0000:0000:0000:000a sport=46130 dport=80 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=0000:0000:0000:0000:0000:0000:0000:0001 sport=4444 dport=46130 [ASSURED] mark=0 zone=0 use=2';
    expect(parseConntrackLine(line)).toEqual({
      protocol: 'tcp',
      orig: { src: '::1', dst: 'fd00:10:96::a', sport: 46130, dport: 80 },
      reply: { src: '::1', dst: '::1', sport: 4444, dport: 46130 },
    });
    const tool = 'tcp      6 431999 ESTABLISHED src=::1 dst=fd00:10:96::a sport=46130 dport=80 src=::1 dst=::1 sport=4444 dport=46130 [ASSURED] mark=0 use=1';
    expect(parseConntrackLine(tool)).toEqual(parseConntrackLine(line));
  });

  it('is found for the accepted socket in either listing', () => {
    // From a machine whose route to the range has its own source address (fd00:123::5).
    const proc = [
      'ipv4     2 tcp      6 431999 ESTABLISHED src=10.123.0.5 dst=10.96.7.7 sport=35666 dport=80 src=127.0.0.1 dst=10.123.0.5 sport=4444 dport=35666 [ASSURED] mark=0 zone=0 use=2',
      'ipv6     10 tcp      6 431999 ESTABLISHED src=fd00:0123:0000:0000:0000:0000:0000:0005 dst=fd00:0010:0096:0000:0000:0000:0000:000a sport=35666 dport=80 src=0000:0000:0000:0000:0000:0000:0000:0001 dst=fd00:0123:0000:0000:0000:0000:0000:0005 sport=4444 dport=35666 [ASSURED] mark=0 zone=0 use=2',
    ].join('\n');
    const accepted = { clientIp: 'fd00:123::5', clientPort: 35666, proxyIp: '::1', proxyPort: 4444 };
    expect(findOriginalDst(proc, accepted)).toEqual({ ip: 'fd00:10:96::a', port: 80 });
    expect(findOriginalDst('tcp      6 431999 ESTABLISHED src=fd00:123::5 dst=fd00:10:96::a sport=35666 dport=80 src=::1 dst=fd00:123::5 sport=4444 dport=35666 [ASSURED] mark=0 use=1', accepted))
      .toEqual({ ip: 'fd00:10:96::a', port: 80 });
    expect(findOriginalDst(proc, { ...accepted, clientIp: 'fd00:123::6' })).toBeUndefined();
  });
});
