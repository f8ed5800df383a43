// Bad input to any plugin, in any mode: one sentence, a non-zero exit, and nothing created in the
// cluster or changed on the laptop. Run as a user bound only to the documented Role.
import { existsSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster as testCluster, createNamespace, deployEcho, kubectl, objectsAsWritten } from './cluster.ts';
import { laptopState } from './laptop-state.ts';
import { runPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

// An env file path that is a symbolic link: kt must refuse it, not write through it.
const linkDir = mkdtempSync(join(tmpdir(), 'kt-bad-link-'));
const linkTarget = join(linkDir, 'target');
writeFileSync(linkTarget, 'untouched\n');
symlinkSync(linkTarget, join(linkDir, 'echo.env'));

// [plugin, arguments, what the one sentence says]
const BAD: [string, string[], RegExp][] = [
  ['kt-connect', ['--mode', 'transparent', '--include-cidr', '10.0.0.0/33'], /--include-cidr: "10.0.0.0\/33" is not an IP address or CIDR/],
  ['kt-connect', ['--mode', 'transparent', '--proxy-port', '99999'], /--proxy-port must be a port number \(0-65535\), not "99999"/],
  ['kt-connect', ['--mode', 'socks', '--dns-port', '53x'], /--dns-port must be a port number/],
  ['kt-connect', ['--mode', 'socks', '--include-cidr', '10.0.0.0/8'], /--include-cidr only applies to --mode transparent/],
  ['kt-connect', ['--mode', 'hosts', '--hosts-file', '/nonexistent/hosts'], /hosts mode edits \/nonexistent\/hosts, which does not exist/],
  ['kt-connect', ['--mode', 'socks', '--cpu-request', 'lots'], /--cpu-request must be a Kubernetes quantity/],
  ['kt-connect', ['--mode', 'socks', '--pod-timeout=-1'], /--pod-timeout "-1" is not a duration; use e.g. 90s, 5m or 1h./],
  ['kt-connect', ['--mode', 'sideways'], /--mode must be one of socks, transparent, hosts, not "sideways"/],
  ['kt-connect', ['--mode', 'transparent', '--udp-ports', '5000-70000'], /--udp-ports: 70000 is out of bounds: a UDP port is 1-65535/],
  ['kt-connect', ['--mode', 'transparent', '--udp-ports', '0,8125'], /--udp-ports: 0 is out of bounds: a UDP port is 1-65535/],
  ['kt-connect', ['--mode', 'transparent', '--udp-ports', '6000-5000'], /--udp-ports: 6000-5000 ends before it begins/],
  ['kt-connect', ['--mode', 'hosts', '--udp-ports', '8125'], /--udp-ports only applies to --mode transparent/],
  ['kt-connect', ['--mode', 'transparent', '--include-cidr', `${testCluster.nodeIp.split('.').slice(0, 3).join('.')}.0/24`], /--include-cidr \S+ covers the API server's address \S+, and capturing it would cut kt's own connection/],
  ['kt-exchange', ['echo', '--expose', '0'], /--expose: .*"0" is not a port number/],
  ['kt-exchange', ['echo', '--expose', '18080:nope'], /service\/echo has no port "nope"/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--recover-after', '1s'], /--recover-after must be at least 5s/],
  ['kt-exchange', ['no-such-svc', '--expose', '18080'], /service "no-such-svc" does not exist/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--memory-limit', '1GB'], /--memory-limit must be a Kubernetes quantity/],
  ['kt-mesh', ['echo', '--expose', '18080:80', '--version-mark', 'a b'], /--version-mark: "a b" is not a usable version/],
  ['kt-mesh', ['echo', '--expose', '18080:80', '--recover-after', 'soon'], /--recover-after "soon" is not a duration/],
  ['kt-preview', ['Bad_Name', '--expose', '18080'], /"Bad_Name" is not a valid Service name/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--type', 'Magic'], /--type must be one of/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--service-account', 'No_Such'], /--service-account must name a Kubernetes object/],
  ['kt-clean', ['--older-than', 'yesterday'], /--older-than "yesterday" is not a duration/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--env-file', '/nonexistent/dir/echo.env'], /--env-file \/nonexistent\/dir\/echo.env: the directory \/nonexistent\/dir does not exist/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--env-file', join(linkDir, 'echo.env')], /--env-file \S+echo.env is a symbolic link; kt writes the environment only to a regular file/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--mount', '/etc'], /--mount \/etc is not empty/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--env-file', '/tmp/kt-bad-input.env', '--env-format', 'xml'], /--env-format must be one of dotenv, json, sh, not "xml"/],
  ['kt-exchange', ['echo', '--expose', '18080:80', '--env-file', '/tmp/kt-bad-input.env', '--container', 'nope'], /container "nope" is not in the pods of service\/echo \(they have echo\)/],
  ['kt-mesh', ['echo', '--expose', '18080:80', '--mount', '/tmp/kt-bad-input-mnt', '--container', 'nope'], /container "nope" is not in the pods of service\/echo/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--env-from', 'deployment/missing', '--env-file', '/tmp/kt-bad-input.env'], /deployment "missing" does not exist in namespace "kt-badin-\w+" \(--env-from\)/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--env-file', '/tmp/kt-bad-input.env'], /--env-file needs --env-from deployment\/NAME or pod\/NAME/],
  ['kt-connect', ['--mode', 'socks', '--env-from', 'pod/missing', '--env-file', '/tmp/kt-bad-input.env'], /pod "missing" does not exist in namespace "kt-badin-\w+" \(--env-from\)/],
  ['kt-connect', ['--mode', 'socks', '--env-from', 'statefulset/db', '--env-file', '/tmp/kt-bad-input.env'], /--env-from must be deployment\/NAME or pod\/NAME, not "statefulset\/db"/],
  ['kt-connect', ['--mode', 'socks', '--env-from', 'deployment/echo', '--container', 'nope', '--env-file', '/tmp/kt-bad-input.env'], /container "nope" is not in the pods of deployment\/echo \(they have echo\)/],
  ['kt-connect', ['--mode', 'socks', '--env-from', 'deployment/missing', '--mount', '/tmp/kt-bad-input-mnt'], /deployment "missing" does not exist in namespace "kt-badin-\w+" \(--env-from\)/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--env-from', 'deployment/echo', '--mount', '/etc'], /--mount \/etc is not empty/],
  ['kt-preview', ['ok-name', '--expose', '18080', '--env-from', 'deployment/echo', '--env-file', '/nonexistent/dir/echo.env'], /--env-file \/nonexistent\/dir\/echo.env: the directory \/nonexistent\/dir does not exist/],
  ['kt-mesh', ['echo', '--expose', '18080:80', '--env-file', '/tmp/kt-bad-input.env', '--env-format', 'yaml'], /--env-format must be one of dotenv, json, sh, not "yaml"/],
  ['kt-connect', ['--mode', 'transparent', '--include-cidr', '::/0'], /--include-cidr ::\/0 would capture every IPv6 destination, and kt never captures it/],
  // The router carries TCP only: a Service with a UDP port would lose it for everyone.
  ['kt-mesh', ['svc-udp', '--expose', '18080:80'], /service\/svc-udp port 7070 \(udp\) is UDP, which kt-mesh's router cannot carry/],
  ['kt-connect', ['--mode', 'socks', '--env-from', 'deployment/echo'], /--env-from picks whose environment --env-file, --mount or -- COMMAND bring; give one of them/],
];

describe('bad input creates nothing', () => {
  const ns = createNamespace('kt-badin', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  let kubeconfig = '';
  let before = { cluster: '', laptop: '' };
  const cluster = (): string => objectsAsWritten(ns.name, 'pods,services,deployments,configmaps,secrets,serviceaccounts,roles,rolebindings');

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    deployEcho('svc-udp', ns.name, 1, { udp: true });
    kubeconfig = restrictedKubeconfig(ns.name);
    before = { cluster: cluster(), laptop: await laptopState() };
  });
  afterAll(() => {
    ns.remove();
    // The link's target was never written through.
    expect(readFileSync(linkTarget, 'utf8')).toBe('untouched\n');
  });

  it.each(BAD)('%s %j', async (plugin, args, expected) => {
    const r = await runPlugin(plugin, [...args, '--kubeconfig', kubeconfig]);
    expect(r.code, r.stderr).not.toBe(0);
    const lines = r.stderr.trim().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(new RegExp(`^${plugin}: `));
    expect(lines[0]).toMatch(expected);
    expect(cluster()).toBe(before.cluster);
    expect(await laptopState()).toBe(before.laptop);
    expect(existsSync('/tmp/kt-bad-input.env') || existsSync('/tmp/kt-bad-input-mnt')).toBe(false);
  });

  it('a Role without patch on services: kt-exchange names the missing rule before creating anything', async () => {
    const noPatch = restrictedKubeconfig(ns.name, (y) => y.replace('  resources: [services]\n  verbs: [get, list, create, patch, delete]', '  resources: [services]\n  verbs: [get, list, create, delete]'), 'kt-nopatch');
    const now = cluster();
    const r = await runPlugin('kt-exchange', ['echo', '--expose', '18080:80', '--kubeconfig', noPatch]);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
    expect(r.stderr).toMatch(/cannot patch services in namespace "kt-badin-\w+"/);
    expect(cluster()).toBe(now);
    expect(kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
  });
});
