import { ApiException } from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { attemptOf, describeTransport, escalatedRules, KubeApiError, rbacRefusal, wrapApiClient } from '../../../../plugins/kube/api-errors.ts';
import { UserError } from '../../../../plugins/cli/errors.ts';
import { explain } from '../../../../plugins/kube/kube.ts';
import { DEVELOPER_ROLE_YAML } from '../../../../plugins/kube/rbac-role.ts';

const ctx = { server: 'https://api.example:6443', contextNamespace: 'team-a' };
const status = (code: number, message: string, details: Record<string, string> = {}): ApiException<string> =>
  new ApiException(code, 'Unknown API Status Code!', JSON.stringify({ kind: 'Status', status: 'Failure', message, details, code }), { 'audit-id': 'x', 'content-type': 'application/json' });
const fetchFailed = (cause: Error & { code?: string }): Error => new TypeError('fetch failed', { cause });
const withCode = (message: string, code: string): Error & { code: string } => Object.assign(new Error(message), { code });

describe('API errors as one sentence', () => {
  it('a 403 names the verb, resource and namespace really refused, and the rule to ask for', () => {
    const e = status(403, 'secrets is forbidden: User "system:serviceaccount:team-a:dev" cannot create resource "secrets" in API group "" in the namespace "team-a"');
    expect(rbacRefusal(e)).toEqual({ verb: 'create', resource: 'secrets', apiGroup: '', namespace: 'team-a' });
    const w = new KubeApiError(e, { verb: 'create', resource: 'secrets', namespace: 'team-a' }, ctx);
    expect(w.message).toBe('missing permission: cannot create secrets in namespace "team-a" (403 Forbidden); kt needs the rule {apiGroups: [""], resources: [secrets], verbs: [create]} in a Role bound to you in "team-a" (\'kubectl kt-connect rbac\' prints every rule kt needs).');
    expect(w.code).toBe(403);
    expect(w).toBeInstanceOf(ApiException);
  });

  it('a 403 in another namespace than the context\'s asks whether -n is right', () => {
    const e = status(403, 'pods is forbidden: User "u" cannot list resource "pods" in API group "" in the namespace "team-b"');
    expect(new KubeApiError(e, { verb: 'list', resource: 'pods', namespace: 'team-b' }, ctx).message).toContain('(is -n right? the context\'s namespace is "team-a")');
  });

  it('a cluster-scoped 403 asks for a ClusterRole', () => {
    const e = status(403, 'namespaces is forbidden: User "u" cannot list resource "namespaces" in API group "" at the cluster scope');
    expect(new KubeApiError(e, { verb: 'list', resource: 'namespaces' }, ctx).message).toMatch(/^missing permission: cannot list namespaces cluster-wide .* a ClusterRole bound to you/);
  });

  it('a 403 from admission is not called a missing permission', () => {
    const e = status(403, 'pods "kt-x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true\nmore');
    const m = new KubeApiError(e, { verb: 'create', resource: 'pods', namespace: 'team-a' }, ctx).message;
    expect(m).toBe('the API server refused to create pods in namespace "team-a": pods "kt-x" is forbidden: violates PodSecurity "restricted:latest": runAsNonRoot != true (403).');
  });

  it('never carries the HTTP body or headers', () => {
    const e = status(409, 'pods "kt-x" already exists');
    const m = new KubeApiError(e, { verb: 'create', resource: 'pods', namespace: 'team-a' }, ctx).message;
    expect(m).toBe('could not create pods in namespace "team-a": pods "kt-x" already exists (HTTP 409).');
    expect(new ApiException(502, 'x', '<html>bad gateway</html>', { a: 'b' }).message).toContain('Headers');
    expect(new KubeApiError(new ApiException(502, 'x', '<html>bad gateway</html>', { a: 'b' }), { verb: 'get', resource: 'pods' }, ctx).message)
      .toBe('the API server https://api.example:6443 answered HTTP 502 to get pods.');
  });

  it('an escalation refusal lists the rules the user does not hold', () => {
    const e = status(403, 'roles.rbac.authorization.k8s.io "kt-1" is forbidden: user "u" (groups=["system:authenticated"]) is attempting to grant RBAC permissions not currently held:\n{APIGroups:[""], Resources:["services"], ResourceNames:["echo"], Verbs:["patch"]}\n{APIGroups:["apps"], Resources:["deployments"], Verbs:["get" "patch"]}');
    expect(escalatedRules(e)).toEqual([
      { apiGroup: '', resource: 'services', verb: 'patch' },
      { apiGroup: 'apps', resource: 'deployments', verb: 'get' },
      { apiGroup: 'apps', resource: 'deployments', verb: 'patch' },
    ]);
  });

  it('explain() keeps the caller\'s words and a UserError as is', () => {
    const e = status(404, 'services "web" not found', { kind: 'services', name: 'web' });
    expect(explain(e, 'get', 'services', 'team-a', ctx.server).message).toBe('could not get services in namespace "team-a": services "web" not found (HTTP 404).');
    expect(explain(status(404, 'namespaces "nope" not found', { kind: 'namespaces', name: 'nope' }), 'get', 'namespaces', 'nope', ctx.server, 'team-a').message)
      .toBe('namespace "nope" does not exist (is -n right? the context\'s namespace is "team-a").');
    const u = new UserError('already said');
    expect(explain(u, 'get', 'pods', 'x', ctx.server)).toBe(u);
  });
});

describe('transport failures name the server and the cause', () => {
  const cases: [string, Error, RegExp][] = [
    ['refused', fetchFailed(withCode('connect ECONNREFUSED 127.0.0.1:2', 'ECONNREFUSED')), /connection was refused/],
    ['timed out', fetchFailed(withCode('Connect Timeout Error', 'UND_ERR_CONNECT_TIMEOUT')), /timed out/],
    ['name not found', fetchFailed(withCode('getaddrinfo ENOTFOUND api.example', 'ENOTFOUND')), /the name "api.example" does not resolve/],
    ['unknown CA', fetchFailed(withCode('self-signed certificate', 'DEPTH_ZERO_SELF_SIGNED_CERT')), /TLS verification failed: its certificate is not signed by the kubeconfig's certificate authority/],
    ['hostname mismatch', fetchFailed(withCode('Hostname/IP does not match', 'ERR_TLS_CERT_ALTNAME_INVALID')), /TLS verification failed: its certificate is not valid for "api.example"/],
    ['expired', fetchFailed(withCode('certificate has expired', 'CERT_HAS_EXPIRED')), /TLS verification failed: its certificate has expired/],
    ['nested in an AggregateError', fetchFailed(new AggregateError([withCode('connect ECONNREFUSED ::1:2', 'ECONNREFUSED')], 'x')), /connection was refused/],
  ];
  it.each(cases)('%s', (_what, e, re) => {
    const u = describeTransport(e, ctx.server);
    expect(u).toBeInstanceOf(UserError);
    expect(u!.message).toMatch(/^cannot reach the API server https:\/\/api\.example:6443: /);
    expect(u!.message).toMatch(re);
    expect(u!.message).not.toContain('\n');
  });

  it('leaves other errors alone', () => {
    expect(describeTransport(new Error('something else'), ctx.server)).toBeUndefined();
  });
});

describe('wrapped API clients', () => {
  it('reads the verb, the resource and the namespace off client-node\'s method names', () => {
    expect(attemptOf('createNamespacedPod', [{ namespace: 'a' }])).toEqual({ verb: 'create', resource: 'pods', namespace: 'a' });
    expect(attemptOf('readNamespacedService', [{ namespace: 'a', name: 'x' }])).toEqual({ verb: 'get', resource: 'services', namespace: 'a' });
    expect(attemptOf('listServiceForAllNamespaces', [])).toEqual({ verb: 'list', resource: 'services', namespace: undefined });
    expect(attemptOf('listNamespacedPodWithHttpInfo', [{ namespace: 'a' }])).toEqual({ verb: 'list', resource: 'pods', namespace: 'a' });
    expect(attemptOf('patchNamespacedRoleBinding', [{ namespace: 'a' }]).resource).toBe('rolebindings');
    expect(attemptOf('createNamespacedNetworkPolicy', [{ namespace: 'a' }]).resource).toBe('networkpolicies');
  });

  it('rejects with one sentence, keeping the status code', async () => {
    const api = {
      readNamespacedPod: (_: { namespace: string; name: string }): Promise<never> => Promise.reject(status(404, 'pods "p" not found', { kind: 'pods', name: 'p' })),
      listNamespacedPod: (_: { namespace: string }): Promise<never> => Promise.reject(fetchFailed(withCode('connect ECONNREFUSED', 'ECONNREFUSED'))),
    };
    const w = wrapApiClient(api, ctx);
    const e = await w.readNamespacedPod({ namespace: 'a', name: 'p' }).catch((x: unknown) => x);
    expect((e as ApiException<unknown>).code).toBe(404);
    expect((e as Error).message).toBe('could not get pods in namespace "a": pods "p" not found (HTTP 404).');
    await expect(w.listNamespacedPod({ namespace: 'a' })).rejects.toThrow(/^cannot reach the API server https:\/\/api.example:6443: the connection was refused/);
  });
});

describe('the Role built into the plugins', () => {
  it('is plugins/rbac/kt-developer.yaml, byte for byte', () => {
    expect(DEVELOPER_ROLE_YAML).toBe(readFileSync('plugins/rbac/kt-developer.yaml', 'utf8'));
  });
});
