// The macOS and Windows steps, checked to the character: no such machine runs these tests.
import { describe, expect, it } from 'vitest';
import { loopbackAliasPlan, macosAliasHooks, staleAliases } from '../../../../plugins/connect/hosts/macos.ts';
import { defaultHostsFile } from '../../../../plugins/connect/hosts/windows.ts';
import { macResolverPlan, resolverFileContent, resolverFileSession, staleResolverFiles } from '../../../../plugins/connect/transparent/resolver-macos.ts';
import { LIST_KT_RULES, nrptPlan, staleNrptUndo } from '../../../../plugins/connect/transparent/resolver-windows.ts';
import { desktopNamesPlan } from '../../../../plugins/connect/transparent/desktop-names.ts';

describe('macOS loopback aliases', () => {
  it('aliases an address on lo0 and un-aliases it', () => {
    expect(loopbackAliasPlan('127.20.0.3')).toEqual({
      apply: { commands: [{ argv: ['ifconfig', 'lo0', 'alias', '127.20.0.3', 'up'], admin: true }], write: [], remove: [] },
      undo: { commands: [{ argv: ['ifconfig', 'lo0', '-alias', '127.20.0.3'], admin: true }], write: [], remove: [] },
    });
  });

  it('records the aliases before adding them, so kt-clean finds them after a crash', async () => {
    const events: unknown[] = [];
    const hooks = macosAliasHooks((d) => events.push(d), async (steps) => { events.push(steps.commands[0]!.argv.join(' ')); });
    await hooks.addAlias('127.20.0.1');
    await hooks.addAlias('127.20.0.2');
    await hooks.removeAlias('127.20.0.1');
    expect(events).toEqual([
      { loopbackAliases: ['127.20.0.1'] }, 'ifconfig lo0 alias 127.20.0.1 up',
      { loopbackAliases: ['127.20.0.1', '127.20.0.2'] }, 'ifconfig lo0 alias 127.20.0.2 up',
      'ifconfig lo0 -alias 127.20.0.1', { loopbackAliases: ['127.20.0.2'] },
    ]);
  });

  it('finds the aliases of dead sessions only, loopback addresses only', () => {
    expect(staleAliases([
      { id: 'dead', alive: false, details: { loopbackAliases: ['127.20.0.1', '127.20.0.2', '10.0.0.1', 7] } },
      { id: 'live', alive: true, details: { loopbackAliases: ['127.20.0.9'] } },
      { id: 'other', alive: false, details: {} },
    ])).toEqual([{ id: 'dead', ip: '127.20.0.1' }, { id: 'dead', ip: '127.20.0.2' }]);
  });
});

describe('macOS resolver files', () => {
  const base = { sessionId: 'abc123', clusterDomain: 'cluster.local', namespaces: ['team-b', 'dev'], port: 53535, isLive: () => false };
  const content = '# kt-session=abc123 (kubectl kt-connect; removed when the session ends, or by kubectl kt-clean)\nnameserver 127.0.0.1\nport 53535\n';

  it('writes one file per domain (cluster domain, then namespaces) pointing at the local DNS port, and removes exactly those', () => {
    expect(resolverFileContent('abc123', 53535)).toBe(content);
    expect(macResolverPlan({ ...base, existing: () => undefined })).toEqual({
      plan: {
        apply: {
          commands: [{ argv: ['mkdir', '-p', '/etc/resolver'], admin: true }],
          write: [
            { path: '/etc/resolver/cluster.local', content },
            { path: '/etc/resolver/dev', content },
            { path: '/etc/resolver/team-b', content },
          ],
          remove: [],
        },
        undo: { commands: [], write: [], remove: ['/etc/resolver/cluster.local', '/etc/resolver/dev', '/etc/resolver/team-b'] },
      },
    });
  });

  it('refuses to replace a resolver file kt did not write, or one of a running session', () => {
    expect(macResolverPlan({ ...base, existing: (p) => (p === '/etc/resolver/dev' ? 'nameserver 10.0.0.2\n' : undefined) }))
      .toEqual({ error: '/etc/resolver/dev exists and kt did not write it; move it away, or the cluster\'s names would replace its resolver.' });
    const other = resolverFileContent('zzz999', 5353);
    expect(macResolverPlan({ ...base, isLive: (id) => id === 'zzz999', existing: () => other }))
      .toEqual({ error: '/etc/resolver/cluster.local belongs to the running kt session zzz999; end that session first.' });
    expect('plan' in macResolverPlan({ ...base, existing: () => other })).toBe(true); // a dead session's file is replaced
    expect(macResolverPlan({ ...base, namespaces: ['../etc'], existing: () => undefined })).toEqual({ error: '"../etc" is not a DNS name kt can write a resolver file for.' });
  });

  it('kt-clean finds the files of dead sessions by their first line', () => {
    expect(resolverFileSession(content)).toBe('abc123');
    expect(resolverFileSession('nameserver 1.1.1.1\n')).toBeUndefined();
    expect(staleResolverFiles([
      { path: '/etc/resolver/a', content },
      { path: '/etc/resolver/b', content: resolverFileContent('live1', 1) },
      { path: '/etc/resolver/corp', content: 'nameserver 10.0.0.2\n' },
    ], (id) => id === 'live1')).toEqual([{ path: '/etc/resolver/a', sessionId: 'abc123' }]);
  });
});

describe('Windows', () => {
  it('finds the hosts file under %SystemRoot%', () => {
    expect(defaultHostsFile('win32', { SystemRoot: 'D:\\WINDOWS' })).toBe('D:\\WINDOWS\\System32\\drivers\\etc\\hosts');
    expect(defaultHostsFile('win32', {})).toBe('C:\\Windows\\System32\\drivers\\etc\\hosts');
    expect(defaultHostsFile('darwin', { SystemRoot: 'x' })).toBe('/etc/hosts');
    expect(defaultHostsFile('linux', {})).toBe('/etc/hosts');
  });

  it('adds one name resolution policy rule for the cluster domain and namespaces, and removes exactly it', () => {
    const ps = ['powershell.exe', '-NoProfile', '-NonInteractive', '-Command'];
    expect(nrptPlan({ sessionId: 'abc123', clusterDomain: 'cluster.local.', namespaces: ['dev'], nameserver: '127.0.0.1' })).toEqual({
      plan: {
        apply: { commands: [{ argv: [...ps, "Add-DnsClientNrptRule -Namespace '.cluster.local','.dev' -NameServers '127.0.0.1' -Comment 'kt-session=abc123'"], admin: true }], write: [], remove: [] },
        undo: { commands: [{ argv: [...ps, "Get-DnsClientNrptRule | Where-Object { $_.Comment -eq 'kt-session=abc123' } | Remove-DnsClientNrptRule -Force"], admin: true }], write: [], remove: [] },
      },
    });
    expect(LIST_KT_RULES.argv).toEqual([...ps, "Get-DnsClientNrptRule | Where-Object { $_.Comment -like 'kt-session=*' } | ForEach-Object { $_.Comment }"]);
    expect(staleNrptUndo('kt-session=dead1\r\nkt-session=live1\r\nkt-session=x\'; evil\r\n', (id) => id === 'live1').map((c) => c.argv.at(-1)))
      .toEqual(["Get-DnsClientNrptRule | Where-Object { $_.Comment -eq 'kt-session=dead1' } | Remove-DnsClientNrptRule -Force"]);
  });

  it('refuses names that are not DNS names, and a local DNS port other than 53', () => {
    expect(nrptPlan({ sessionId: 'a', clusterDomain: "x'; Remove-Item", namespaces: [], nameserver: '127.0.0.1' })).toEqual({ error: '"x\'; remove-item" is not a DNS name kt can add a name resolution policy for.' });
    expect(() => desktopNamesPlan('win32', { sessionId: 'a', clusterDomain: 'cluster.local', namespaces: [], port: 5353, isLive: () => false }, () => undefined))
      .toThrow('on Windows the local DNS server must listen on port 53: a name resolution policy cannot name another port.');
  });
});

describe('per platform', () => {
  const input = { sessionId: 's1', clusterDomain: 'cluster.local', namespaces: ['dev'], port: 53, isLive: () => false };
  it('Linux has no desktop steps (resolv.conf is wired instead), macOS and Windows theirs', () => {
    expect(desktopNamesPlan('linux', input, () => undefined)).toEqual({ apply: { commands: [], write: [], remove: [] }, undo: { commands: [], write: [], remove: [] } });
    expect(desktopNamesPlan('darwin', input, () => undefined).apply.write.map((f) => f.path)).toEqual(['/etc/resolver/cluster.local', '/etc/resolver/dev']);
    expect(desktopNamesPlan('win32', input, () => undefined).apply.commands).toHaveLength(1);
  });
});
