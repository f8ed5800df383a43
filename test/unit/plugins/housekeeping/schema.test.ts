// The kt.dev/v1 output schema: sessions from kt's pods, a local kt-connect record, and the formats.
import { describe, expect, it } from 'vitest';
import type { V1Pod } from '@kubernetes/client-node';
import { load } from 'js-yaml';
import { sessionsFromPods } from '../../../../plugins/housekeeping/sessions.ts';
import { printSessionList, sessionFromCluster, sessionList, type SessionList } from '../../../../plugins/housekeeping/schema.ts';
import { connectSession } from '../../../../plugins/connect/status.ts';
import type { LocalSession } from '../../../../plugins/session/local-state.ts';

const T0 = Date.parse('2026-01-02T03:04:05Z');

function shadow(id: string, o: { kind?: string; target?: string; created?: number; beat?: number; plan?: string } = {}): V1Pod {
  return {
    metadata: {
      name: `kt-${o.kind ?? 'exchange'}-${id}`, namespace: 'dev', creationTimestamp: new Date(o.created ?? T0) as unknown as Date,
      labels: { 'app.kubernetes.io/managed-by': 'kt', 'kt.dev/role': 'shadow', 'kt.dev/session': id },
      annotations: { 'kt.dev/kind': o.kind ?? 'exchange', 'kt.dev/user': 'ann@lap', 'kt.dev/target': o.target ?? 'service/echo' },
      managedFields: o.beat === undefined ? [] : [{ manager: 'kt-heartbeat', time: new Date(o.beat) as unknown as Date }],
    },
    spec: { containers: [{ name: 'shadow', env: o.plan ? [{ name: 'KT_RECOVERY_PLAN', value: o.plan }] : [] }] },
  };
}

describe('sessions as kt.dev/v1 documents', () => {
  it('judges heartbeats by the cluster clock, and names mode, times (RFC 3339) and ages (seconds)', () => {
    const now = T0 + 200_000;
    const sessions = sessionsFromPods([shadow('aaaaaaaaaa', { beat: T0 + 190_000 }), shadow('bbbbbbbbbb', { target: 'deployment/echo', beat: T0 + 10_000 })], now, [], undefined, () => true);
    const list = sessionList(sessions.map(sessionFromCluster), now);
    expect(list).toMatchObject({ apiVersion: 'kt.dev/v1', kind: 'SessionList', metadata: { clusterTime: '2026-01-02T03:07:25Z' } });
    expect(list.items[0]).toEqual({
      apiVersion: 'kt.dev/v1', kind: 'Session',
      metadata: { name: 'aaaaaaaaaa', namespace: 'dev', creationTimestamp: '2026-01-02T03:04:05Z' },
      spec: { type: 'exchange', target: 'service/echo', user: 'ann@lap', mode: 'selector' },
      status: { state: 'healthy', ageSeconds: 200, lastHeartbeatTime: '2026-01-02T03:07:15Z', heartbeatAgeSeconds: 10, objects: [{ kind: 'Pod', name: 'kt-exchange-aaaaaaaaaa', namespace: 'dev' }] },
    });
    expect(list.items[1]!.spec.mode).toBe('scale');
    expect(list.items[1]!.status.state).toBe('stale');
  });

  it('never prints a recovery plan; an unreadable one is a problem, named', () => {
    const plan = JSON.stringify({ session: 'aaaaaaaaaa', namespace: 'dev', steps: [{ op: 'restore-selector', service: 'echo' }] });
    const [ok, bad] = sessionsFromPods([shadow('aaaaaaaaaa', { plan }), shadow('cccccccccc', { plan: '{"contract":"9.0"' })], T0, [], undefined, () => true);
    expect(JSON.stringify(sessionFromCluster(ok!))).not.toContain('restore-selector');
    expect(sessionFromCluster(bad!).status.problems?.[0]).toContain('pod/kt-exchange-cccccccccc');
  });

  it('a session whose process on this machine is gone is orphaned at once', () => {
    const rec: LocalSession = { id: 'aaaaaaaaaa', kind: 'exchange', pid: 4242, namespace: 'dev', context: 'c', server: 's', startedAt: T0, updatedAt: T0, details: {} };
    const [s] = sessionsFromPods([shadow('aaaaaaaaaa', { beat: T0 })], T0 + 1000, [rec], undefined, () => false);
    expect(s!.state).toBe('orphaned');
  });

  it('kt-connect status speaks the same schema', () => {
    const rec: LocalSession = {
      id: 'dddddddddd', kind: 'connect', pid: 1, namespace: 'dev', context: 'kind', server: 's', mode: 'socks', startedAt: T0, updatedAt: T0,
      details: { tunnel: { state: 'up', reconnects: 2, openChannels: 1, totalChannels: 9 } },
    };
    const s = connectSession(rec, T0 + 61_400, () => true);
    expect(s).toMatchObject({
      apiVersion: 'kt.dev/v1', kind: 'Session', metadata: { name: 'dddddddddd', namespace: 'dev', creationTimestamp: '2026-01-02T03:04:05Z' },
      spec: { type: 'connect', mode: 'socks' },
      status: { state: 'healthy', ageSeconds: 61, process: { pid: 1, context: 'kind' }, tunnel: { state: 'up', reconnects: 2, openConnections: 1, totalConnections: 9 } },
    });
    expect(connectSession(rec, T0, () => false).status.state).toBe('orphaned');
  });

  it('prints json, yaml (parsed back), names and tables with or without headers', () => {
    const list = sessionList(sessionsFromPods([shadow('aaaaaaaaaa', { beat: T0 })], T0 + 5000, [], undefined, () => true).map(sessionFromCluster), T0 + 5000);
    expect(JSON.parse(printSessionList(list, 'json', { noHeaders: false, allNamespaces: false }))).toEqual(list);
    expect(load(printSessionList(list, 'yaml', { noHeaders: false, allNamespaces: false })) as SessionList).toEqual(list);
    expect(printSessionList(list, 'name', { noHeaders: false, allNamespaces: false })).toBe('session.kt.dev/aaaaaaaaaa\n');
    const t = printSessionList(list, undefined, { noHeaders: false, allNamespaces: true });
    expect(t.split('\n')[0]).toMatch(/^NAMESPACE\s+SESSION\s+KIND\s+TARGET\s+USER\s+AGE\s+HEARTBEAT\s+STATE$/);
    expect(t.split('\n')[1]).toMatch(/^dev\s+aaaaaaaaaa\s+exchange\s+service\/echo\s+ann@lap\s+5s\s+5s ago\s+healthy$/);
    expect(printSessionList(list, 'wide', { noHeaders: true, allNamespaces: false })).toMatch(/^aaaaaaaaaa\s+exchange\s+service\/echo\s+ann@lap\s+5s\s+5s ago\s+healthy\s+selector\s+pod\/kt-exchange-aaaaaaaaaa\n$/);
  });
});
