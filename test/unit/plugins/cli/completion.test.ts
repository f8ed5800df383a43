// Shell completion: the __complete protocol kubectl's plugin helpers speak, the completion
// scripts, and the real plugins answering through the source-tree helpers in plugins/bin.
import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { command, KUBE_FLAGS } from '../../../../plugins/cli/cli.ts';
import { clusterSources, complete, completionScript, Directive, formatCompletion, withCompletion, type Sources, type Target } from '../../../../plugins/cli/completion.ts';

const run = async (): Promise<number> => 0;
const spec = command({
  name: 'kt-demo',
  summary: 'A demo',
  usage: 'kubectl kt-demo',
  flags: {
    ...KUBE_FLAGS,
    mode: { type: 'string', description: 'How', choices: ['socks', 'transparent', 'hosts'] },
    output: { type: 'string', short: 'o', description: 'Format', choices: ['text', 'json'] },
    'include-cidr': { type: 'list', description: 'Extra ranges' },
    service: { type: 'string', description: 'A Service', complete: 'service' },
    'proxy-port': { type: 'string', description: 'Port' },
    'all-namespaces': { type: 'boolean', short: 'A', description: 'Everywhere' },
    quiet: { type: 'boolean', short: 'q', description: 'Quiet' },
  },
  subcommands: [command({ name: 'status', summary: 'Show status', usage: 'kubectl kt-demo status', flags: { ...KUBE_FLAGS, output: { type: 'string', short: 'o', description: 'Format', choices: ['text', 'json'] } }, run })],
  run,
});
const exchange = command({ name: 'kt-swap', summary: '', usage: '', flags: { ...KUBE_FLAGS, 'env-from': { type: 'string', description: 'From', complete: 'workload' } }, positionals: [{ name: 'SERVICE', complete: 'service-or-deployment' }], run });

const asked: { what: string; t: Target }[] = [];
const sources: Sources = {
  contexts: async (t) => { asked.push({ what: 'contexts', t }); return ['prod', 'dev', 'kind-dev']; },
  namespaces: async (t) => { asked.push({ what: 'namespaces', t }); return ['default', 'dev', 'kube-system', 'dev']; },
  services: async (t) => { asked.push({ what: 'services', t }); return ['echo', 'api']; },
  deployments: async (t) => { asked.push({ what: 'deployments', t }); return ['echo', 'web']; },
  pods: async (t) => { asked.push({ what: 'pods', t }); return ['echo-5f7c'] },
};
const values = async (words: string[]): Promise<string[]> => (await complete(spec, words, sources)).candidates.map((c) => c.value);
const directive = async (words: string[]): Promise<number> => (await complete(spec, words, sources)).directive;

describe('__complete', () => {
  it('offers the subcommands, and completion, as the first word', async () => {
    expect(await values([''])).toEqual(['status', 'completion']);
    expect(await values(['st'])).toEqual(['status']);
    expect(await directive([''])).toBe(Directive.NoFileComp);
    const c = await complete(spec, [''], sources);
    expect(c.candidates[0]!.description).toBe('Show status');
  });

  it('offers flag names, with descriptions, leaving out the ones already given', async () => {
    const all = await values(['--']);
    expect(all).toContain('--mode');
    expect(all).toContain('--namespace');
    expect(all).toContain('--help');
    expect(all).toContain('--version');
    expect(all.every((f) => f.startsWith('--'))).toBe(true);
    expect(await values(['--mo'])).toEqual(['--mode']);
    expect(await values(['--mode', 'socks', '--mo'])).toEqual([]);
    // Flags that may repeat are offered again.
    expect(await values(['--include-cidr', '10.0.0.0/8', '--inc'])).toEqual(['--include-cidr']);
    // A lone dash adds the shorthands.
    expect(await values(['-'])).toEqual(expect.arrayContaining(['-n', '--namespace', '-o', '-A']));
    expect(await directive(['--'])).toBe(Directive.NoFileComp);
  });

  it("completes a flag's choices, as a separate word or after =", async () => {
    expect(await values(['--mode', ''])).toEqual(['socks', 'transparent', 'hosts']);
    expect(await values(['--mode', 't'])).toEqual(['transparent']);
    expect(await values(['--mode=h'])).toEqual(['--mode=hosts']);
    expect(await values(['-o', ''])).toEqual(['text', 'json']);
    expect(await values(['-qo', 'j'])).toEqual(['json']);
    expect(await directive(['--mode', ''])).toBe(Directive.NoFileComp);
  });

  it('completes the choices of a subcommand', async () => {
    expect(await values(['status', '-o', ''])).toEqual(['text', 'json']);
    expect(await values(['status', '--'])).not.toContain('--mode');
  });

  it('completes contexts and namespaces from the kubeconfig and cluster, honouring --kubeconfig and --context', async () => {
    asked.length = 0;
    expect(await values(['--context', 'd'])).toEqual(['dev']);
    expect(await values(['--kubeconfig', '/tmp/k', '--context', 'prod', '-n', 'd'])).toEqual(['default', 'dev']);
    expect(asked.at(-1)).toEqual({ what: 'namespaces', t: { kubeconfig: '/tmp/k', context: 'prod', namespace: undefined } });
    expect(await values(['--namespace=kube'])).toEqual(['--namespace=kube-system']);
    expect(await values(['-n', 'dev', '--service', ''])).toEqual(['api', 'echo']);
    expect(asked.at(-1)!.t.namespace).toBe('dev');
  });

  it('answers with nothing, not an error, when the cluster cannot be asked', async () => {
    const failing: Sources = { contexts: () => Promise.reject(new Error('no')), namespaces: () => Promise.reject(new Error('no')), services: () => Promise.reject(new Error('no')) };
    expect(await complete(spec, ['-n', ''], failing)).toEqual({ candidates: [], directive: Directive.NoFileComp });
  });

  it('leaves files to the shell for --kubeconfig and after --', async () => {
    expect(await directive(['--kubeconfig', ''])).toBe(Directive.Default);
    expect(await directive(['--', 'cu'])).toBe(Directive.Default);
    expect(await values(['--', '--mo'])).toEqual([]);
  });

  it('completes nothing, and no files, for free-form values and positionals', async () => {
    expect(await complete(spec, ['--proxy-port', ''], sources)).toEqual({ candidates: [], directive: Directive.NoFileComp });
    expect(await complete(spec, ['-n', 'dev', 'x'], sources)).toEqual({ candidates: [], directive: Directive.NoFileComp });
  });

  it('completes the completion subcommand with the shells', async () => {
    expect(await values(['completion', ''])).toEqual(['bash', 'zsh', 'fish', 'powershell']);
    expect(await values(['completion', 'z'])).toEqual(['zsh']);
    expect(await values(['completion', 'bash', ''])).toEqual([]);
  });

  it('completes positional arguments: Services or deployment/NAME, in the namespace given', async () => {
    const words = async (w: string[]): Promise<string[]> => (await complete(exchange, w, sources)).candidates.map((c) => c.value);
    expect(await words([''])).toEqual(['api', 'echo', 'deployment/', 'completion']);
    expect(await words(['e'])).toEqual(['echo']);
    expect((await complete(exchange, ['dep'], sources)).directive).toBe(Directive.NoFileComp | Directive.NoSpace);
    expect(await words(['-n', 'dev', 'deployment/'])).toEqual(['deployment/echo', 'deployment/web']);
    expect(asked.at(-1)).toEqual({ what: 'deployments', t: expect.objectContaining({ namespace: 'dev' }) });
    expect(await words(['echo', ''])).toEqual([]);
    expect(await words(['echo', '--env-from', ''])).toEqual(['deployment/', 'pod/']);
    expect(await words(['echo', '--env-from', 'pod/'])).toEqual(['pod/echo-5f7c']);
  });

  it('prints cobra\'s protocol: one candidate per line, tab before a description, then :directive', () => {
    const c = { candidates: [{ value: '--mode', description: 'How\nit connects' }, { value: 'socks' }], directive: 4 };
    expect(formatCompletion(c)).toBe('--mode\tHow it connects\nsocks\n:4\n');
    expect(formatCompletion(c, false)).toBe('--mode\nsocks\n:4\n');
    expect(formatCompletion({ candidates: [], directive: 0 })).toBe(':0\n');
  });

  it('adds the completion subcommand once', () => {
    const once = withCompletion(spec);
    expect(once.subcommands!.map((s) => s.name)).toEqual(['status', 'completion']);
    expect(withCompletion(once)).toBe(once);
    expect(spec.subcommands!.map((s) => s.name)).toEqual(['status']);
  });
});

describe('completion scripts', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-completion-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it.each(['bash', 'zsh', 'fish'] as const)('%s: registers a function for kubectl-kt_demo that runs __complete', (shell) => {
    const s = completionScript(shell, 'kt-demo');
    expect(s).toContain('__kt_complete_kubectl_kt_demo');
    expect(s).toContain('__complete');
    expect(s).toMatch(shell === 'bash' ? /complete -o default -F __kt_complete_kubectl_kt_demo kubectl-kt_demo/ : shell === 'zsh' ? /compdef __kt_complete_kubectl_kt_demo kubectl-kt_demo/ : /complete -c kubectl-kt_demo/);
    if (shell === 'zsh') expect(s.startsWith('#compdef kubectl-kt_demo\n')).toBe(true);
  });

  it('powershell: registers a native completer for the plugin and its .exe that speaks __complete', () => {
    const s = completionScript('powershell', 'kt-demo');
    expect(s).toContain("Register-ArgumentCompleter -Native -CommandName 'kubectl-kt_demo', 'kubectl-kt_demo.exe' -ScriptBlock {");
    expect(s).toContain('& $program __complete @quoted');
    expect(s).toContain("[System.Management.Automation.CompletionResult]::new($value, $value, 'ParameterValue', $tip)");
    expect(s.split('\n').filter((l) => l.trim().startsWith('#')).every((l) => !l.includes('`'))).toBe(true);
    // Braces balance, so PowerShell can parse the block.
    expect(s.split('{').length).toBe(s.split('}').length);
  });

  it('bash: the script is valid and fills COMPREPLY from the plugin, after = too', () => {
    // A stand-in plugin that logs its arguments and answers like kt does.
    const fake = join(dir, 'kubectl-kt_demo');
    writeFileSync(fake, `#!/bin/sh\necho "$@" >> ${join(dir, 'args')}\nprintf 'socks\\ttheir proxy\\ntransparent\\n:4\\n'\n`);
    chmodSync(fake, 0o755);
    const script = join(dir, 'demo.bash');
    writeFileSync(script, completionScript('bash', 'kt-demo'));
    const check = (line: string): string => execFileSync('bash', ['-c', [
      `source ${script}`,
      `COMP_LINE='${line}'; COMP_POINT=\${#COMP_LINE}`,
      'compopt() { :; }',
      '__kt_complete_kubectl_kt_demo',
      'printf "%s|" "${COMPREPLY[@]}"',
    ].join('\n')], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
    expect(check('kubectl-kt_demo --mode ')).toBe('socks|transparent|');
    expect(check('kubectl-kt_demo --mode=s')).toBe('socks|transparent|'); // the shell filters
    const args = execFileSync('cat', [join(dir, 'args')], { encoding: 'utf8' }).split('\n');
    expect(args[0]).toBe('__complete --mode ');
    expect(args[1]).toBe('__complete --mode=s');
  });

  it('bash: candidates after --flag= are trimmed to what follows =', () => {
    const fake = join(dir, 'kubectl-kt_demo');
    writeFileSync(fake, "#!/bin/sh\nprintf -- '--mode=socks\\n:4\\n'\n");
    chmodSync(fake, 0o755);
    const script = join(dir, 'demo.bash');
    const out = execFileSync('bash', ['-c', `source ${script}; COMP_LINE='kubectl-kt_demo --mode=so'; COMP_POINT=\${#COMP_LINE}; compopt() { :; }; __kt_complete_kubectl_kt_demo; printf "%s|" "\${COMPREPLY[@]}"`], { encoding: 'utf8', env: { ...process.env, PATH: `${dir}:${process.env.PATH ?? ''}` } });
    expect(out).toBe('socks|');
  });

  it.each(['zsh', 'fish'] as const)('%s: the script parses (when %s is installed)', (shell) => {
    const has = spawnSync('sh', ['-c', `command -v ${shell}`]).status === 0;
    if (!has) return;
    const file = join(dir, `demo.${shell}`);
    writeFileSync(file, completionScript(shell, 'kt-demo'));
    const r = spawnSync(shell, ['-n', file], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('the real plugins, through the helpers in plugins/bin', () => {
  const bin = resolve('plugins/bin');
  const env = { ...process.env, PATH: `${bin}:${process.env.PATH ?? ''}`, KUBECONFIG: '/nonexistent/kubeconfig', KT_CONFIG: '' };
  const sh = (cmd: string, args: string[]): string => execFileSync(join(bin, cmd), args, { encoding: 'utf8', env, timeout: 30_000 });

  it('kubectl_complete-kt_connect answers with the modes', () => {
    expect(sh('kubectl_complete-kt_connect', ['--mode', ''])).toBe('socks\ntransparent\nhosts\n:4\n');
  });

  it('kubectl_complete-kt_status answers with flags and output formats', () => {
    expect(sh('kubectl_complete-kt_status', ['-o', ''])).toBe('json\nyaml\nwide\nname\n:4\n');
    expect(sh('kubectl_complete-kt_status', ['--all'])).toMatch(/^--all-namespaces\t.+\n:4\n$/);
  });

  it('kubectl kt-connect completion bash prints a script; an unknown shell is an error', () => {
    expect(sh('kubectl-kt_connect', ['completion', 'bash'])).toContain('complete -o default -F __kt_complete_kubectl_kt_connect kubectl-kt_connect');
    const r = spawnSync(join(bin, 'kubectl-kt_connect'), ['completion', 'tcsh'], { encoding: 'utf8', env });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('completion takes one of bash, zsh, fish');
  });
});

describe('kubectl generic flags', () => {
  it('completes --cluster and --user from the kubeconfig, and hands them on to the cluster queries', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'kt-compl-'));
    const kc = join(dir, 'config');
    writeFileSync(kc, 'apiVersion: v1\nkind: Config\nclusters: [{name: prod, cluster: {server: "https://p:1"}}, {name: dev, cluster: {server: "https://d:1"}}]\n'
      + 'users: [{name: alice, user: {token: a}}, {name: bob, user: {token: b}}]\ncontexts: [{name: x, context: {cluster: prod, user: alice}}]\ncurrent-context: x\n');
    const real = clusterSources({});
    const words = (w: string[]): Promise<string[]> => complete(spec, w, real).then((c) => c.candidates.map((x) => x.value));
    expect(await words(['--kubeconfig', kc, '--cluster', ''])).toEqual(['dev', 'prod']);
    expect(await words(['--kubeconfig', kc, '--user', 'b'])).toEqual(['bob']);
    expect(await words(['--kubeconfig', kc, '--as-gr'])).toEqual(['--as-group']);
    asked.length = 0;
    await values(['--cluster', 'dev', '--user', 'bob', '--service', '']);
    expect(asked[0]!.t).toMatchObject({ cluster: 'dev', user: 'bob' });
  });
});
