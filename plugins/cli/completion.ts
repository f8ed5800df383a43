// Shell completion for the plugins, generated from their command declarations (cli.ts), the same
// ones yargs parses with.
//
// kubectl 1.26+ completes `kubectl kt-connect <TAB>` by running `kubectl_complete-kt_connect` from
// PATH with the words after the plugin name, the last one being the word to complete, and reads
// cobra's `__complete` protocol back: one candidate per line (optionally `value<TAB>description`),
// then `:<directive>`. The helper runs `kubectl-kt_connect __complete <words...>`, answered here.
// `kubectl kt-connect completion bash|zsh|fish` prints a script that completes the plugin when it
// is run by its own name (kubectl-kt_connect ...), through the same protocol.
import { command, type Command, type Completer, type FlagDef } from './cli.ts';

/** cobra's ShellCompDirective bits. */
export const Directive = {
  Default: 0,
  Error: 1,
  NoSpace: 2,
  NoFileComp: 4,
  FilterFileExt: 8,
  FilterDirs: 16,
  KeepOrder: 32,
} as const;

export interface Completion {
  candidates: { value: string; description?: string }[];
  directive: number;
}

export interface Target {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
  cluster?: string | undefined;
  user?: string | undefined;
}

/** Where dynamic candidates come from; the real ones read the kubeconfig and ask the cluster. */
export interface Sources {
  contexts(t: Target): Promise<string[]>;
  namespaces(t: Target): Promise<string[]>;
  services(t: Target): Promise<string[]>;
  /** The kubeconfig's cluster and user names, for --cluster and --user. */
  clusters?(t: Target): Promise<string[]>;
  users?(t: Target): Promise<string[]>;
  /** Deployments and pods of the namespace, for deployment/NAME and pod/NAME arguments. */
  deployments?(t: Target): Promise<string[]>;
  pods?(t: Target): Promise<string[]>;
}

export const SHELLS = ['bash', 'zsh', 'fish', 'powershell'] as const;
/** How long completion waits for the cluster before answering with what it has. */
export const CLUSTER_TIMEOUT_MS = 2000;

/** A flag of a command, with its name. */
interface NamedFlag { readonly name: string; readonly def: FlagDef }

const HELP_FLAG: NamedFlag = { name: 'help', def: { type: 'boolean', short: 'h', description: 'Show this help' } };
const VERSION_FLAG: NamedFlag = { name: 'version', def: { type: 'boolean', description: 'Show the version' } };

/** The `completion` subcommand every plugin gets. */
export function completionCommand(parent: Command): Command {
  const u = parent.name.replaceAll('-', '_');
  return command({
    name: 'completion',
    summary: 'Print a shell completion script (bash, zsh, fish or powershell)',
    usage: `kubectl ${parent.name} completion bash|zsh|fish|powershell`,
    examples: [
      `source <(kubectl ${parent.name} completion bash)   # completes kubectl-${u} ...`,
      `kubectl ${parent.name} completion powershell | Out-String | Invoke-Expression`,
      `ln -sf kubectl-${u} "\${KREW_ROOT:-$HOME/.krew}/bin/kubectl_complete-${u}"   # kubectl ${parent.name} <TAB> (kubectl 1.26+ runs kubectl_complete-${u} from PATH)`,
    ],
    flags: {},
    positionals: [{ name: 'SHELL', complete: SHELLS }],
    run: async (o) => {
      const { UserError } = await import('./errors.ts');
      const shell = o.args[0];
      if (!shell || !(SHELLS as readonly string[]).includes(shell) || o.args.length > 1) {
        throw new UserError(`completion takes one of ${SHELLS.join(', ')}; see 'kubectl ${parent.name} completion --help'.`, 2);
      }
      process.stdout.write(completionScript(shell as (typeof SHELLS)[number], parent.name));
      return 0;
    },
  });
}

/** spec with the `completion` subcommand added (once). */
export function withCompletion(spec: Command): Command {
  if (spec.subcommands?.some((s) => s.name === 'completion')) return spec;
  return { ...spec, subcommands: [...(spec.subcommands ?? []), completionCommand(spec)] };
}

const allFlags = (cmd: Command): NamedFlag[] => [...Object.entries(cmd.flags).map(([name, def]) => ({ name, def })), HELP_FLAG, VERSION_FLAG];
const takesValue = (f: NamedFlag): boolean => f.def.type !== 'boolean';

/** Answers `__complete`: words are the arguments after the plugin name, the last one being completed. */
export async function complete(specIn: Command, words: string[], sources: Sources): Promise<Completion> {
  const spec = withCompletion(specIn);
  const cur = words.length > 0 ? words[words.length - 1]! : '';
  let prior = words.slice(0, -1);
  let cmd = spec;
  const sub = spec.subcommands?.find((s) => s.name === prior[0]);
  if (sub) {
    cmd = sub;
    prior = prior.slice(1);
  }
  const flags = allFlags(cmd);
  const values: Record<string, string> = {};
  const used = new Set<string>();
  const positionals: string[] = [];
  let pending: NamedFlag | undefined;
  let terminated = false;
  for (const w of prior) {
    if (pending) {
      values[pending.name] = w;
      pending = undefined;
    } else if (terminated) {
      positionals.push(w);
    } else if (w === '--') {
      terminated = true;
    } else if (w.startsWith('--')) {
      const eq = w.indexOf('=');
      const name = w.slice(2, eq < 0 ? undefined : eq);
      const f = flags.find((x) => x.name === name);
      if (!f) continue;
      used.add(f.name);
      if (takesValue(f)) {
        if (eq < 0) pending = f;
        else values[f.name] = w.slice(eq + 1);
      }
    } else if (w.startsWith('-') && w.length > 1) {
      // -n ns, -nns, and runs of boolean shorthands (-qA).
      for (let i = 1; i < w.length; i++) {
        const f = flags.find((x) => x.def.short === w[i]);
        if (!f) break;
        used.add(f.name);
        if (takesValue(f)) {
          if (i + 1 < w.length) values[f.name] = w.slice(i + 1).replace(/^=/, '');
          else pending = f;
          break;
        }
      }
    } else {
      positionals.push(w);
    }
  }
  const target: Target = { kubeconfig: values.kubeconfig, context: values.context, namespace: values.namespace, cluster: values.cluster, user: values.user };

  // After `--` comes a command of the user's (kt-connect -- curl ...): the shell completes it.
  if (terminated) return { candidates: [], directive: Directive.Default };
  if (pending) return flagValues(pending, cur, '', target, sources);
  if (cur.startsWith('--') && cur.includes('=')) {
    const eq = cur.indexOf('=');
    const f = flags.find((x) => x.name === cur.slice(2, eq));
    if (!f || !takesValue(f)) return { candidates: [], directive: Directive.NoFileComp };
    return flagValues(f, cur.slice(eq + 1), cur.slice(0, eq + 1), target, sources);
  }
  if (cur.startsWith('-')) {
    const candidates: Completion['candidates'] = [];
    for (const f of flags) {
      if (used.has(f.name) && f.def.type !== 'list') continue;
      candidates.push({ value: `--${f.name}`, description: f.def.description });
      if (cur === '-' && f.def.short) candidates.push({ value: `-${f.def.short}`, description: f.def.description });
    }
    return { candidates: candidates.filter((c) => c.value.startsWith(cur)), directive: Directive.NoFileComp };
  }
  // Subcommands come first or not at all (kt-connect status, not kt-connect -n x status).
  const subs = cmd === spec && prior.length === 0
    ? (spec.subcommands ?? []).filter((s) => s.name.startsWith(cur)).map((s) => ({ value: s.name, description: s.summary }))
    : [];
  const positional = cmd.positionals?.[positionals.length];
  if (positional?.complete) {
    const c = await valueCandidates(positional.complete, cur, '', target, sources);
    return subs.length > 0 ? { candidates: [...c.candidates, ...subs], directive: Directive.NoFileComp } : c;
  }
  return { candidates: subs, directive: Directive.NoFileComp };
}

function flagValues(f: NamedFlag, cur: string, prefix: string, target: Target, sources: Sources): Promise<Completion> {
  const how = f.def.type === 'string' && f.def.choices ? f.def.choices : f.def.complete;
  return valueCandidates(how, cur, prefix, target, sources);
}

/** Candidates for a value completed from a list of choices or by a Completer. */
async function valueCandidates(how: Completer | readonly string[] | undefined, cur: string, prefix: string, target: Target, sources: Sources): Promise<Completion> {
  const done = (values: readonly string[]): Completion => ({
    candidates: [...new Set(values)].filter((v) => v.startsWith(cur)).map((v) => ({ value: prefix + v })),
    directive: Directive.NoFileComp,
  });
  const kinds = async (kind: string, list: ((t: Target) => Promise<string[]>) | undefined): Promise<string[]> =>
    (await list?.(target).catch(() => []) ?? []).map((n) => `${kind}/${n}`);
  // A lone `kind/` is completed further, so no space after it.
  const kindFirst = (list: readonly string[]): Completion => {
    const c = done(list);
    return c.candidates.length > 0 && c.candidates.every((x) => x.value.endsWith('/')) ? { ...c, directive: Directive.NoFileComp | Directive.NoSpace } : c;
  };
  if (typeof how === 'object') return done(how);
  switch (how) {
    case 'file': return { candidates: [], directive: Directive.Default };
    case 'context': return done((await sources.contexts(target).catch(() => [])).sort());
    case 'namespace': return done((await sources.namespaces(target).catch(() => [])).sort());
    case 'service': return done((await sources.services(target).catch(() => [])).sort());
    case 'cluster': return done((await sources.clusters?.(target).catch(() => []) ?? []).sort());
    case 'user': return done((await sources.users?.(target).catch(() => []) ?? []).sort());
    // kt-exchange SERVICE|deployment/NAME: after a slash only the kind's objects.
    case 'service-or-deployment': return kindFirst(cur.includes('/')
      ? await kinds('deployment', sources.deployments)
      : [...(await sources.services(target).catch(() => [])).sort(), 'deployment/']);
    case 'workload': return kindFirst(cur.includes('/')
      ? [...(await kinds('deployment', sources.deployments)), ...(await kinds('pod', sources.pods))].sort()
      : ['deployment/', 'pod/']);
    default: return { candidates: [], directive: Directive.NoFileComp };
  }
}

/** The protocol's text: candidates, then `:<directive>`. */
export function formatCompletion(c: Completion, descriptions = true): string {
  const lines = c.candidates.map((x) => (descriptions && x.description ? `${x.value}\t${x.description.replace(/\s+/g, ' ')}` : x.value));
  return `${[...lines, `:${c.directive}`].join('\n')}\n`;
}

function withTimeout<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(fallback), ms);
    t.unref();
    p.then((v) => { clearTimeout(t); resolve(v); }, () => { clearTimeout(t); resolve(fallback); });
  });
}

/** Candidates from the kubeconfig (kubectl's merge rules) and, best effort, from the cluster. */
export function clusterSources(env = process.env, timeoutMs = CLUSTER_TIMEOUT_MS): Sources {
  const raw = async (t: Target): Promise<{ contexts: { name: string; context?: { namespace?: string } }[]; clusters: { name: string }[]; users: { name: string }[]; current?: string }> => {
    const { kubeconfigFiles, mergeFirstWins } = await import('../kube/kubeconfig.ts');
    const { load } = await import('js-yaml');
    const { existsSync, readFileSync } = await import('node:fs');
    const { dirname, resolve } = await import('node:path');
    const docs = kubeconfigFiles(t.kubeconfig, env).filter((f) => existsSync(f)).map((f) => ({ raw: (load(readFileSync(f, 'utf8')) ?? {}) as Parameters<typeof mergeFirstWins>[0][number]['raw'], dir: dirname(resolve(f)) }));
    const merged = mergeFirstWins(docs);
    return { contexts: (merged.contexts ?? []) as { name: string; context?: { namespace?: string } }[], clusters: merged.clusters ?? [], users: merged.users ?? [], current: merged['current-context'] };
  };
  const api = async (t: Target): Promise<{ core: import('@kubernetes/client-node').CoreV1Api; namespace: string }> => {
    const { loadKube } = await import('../kube/kubeconfig.ts');
    const { CoreV1Api } = await import('@kubernetes/client-node');
    const k = loadKube(t, env);
    return { core: k.kc.makeApiClient(CoreV1Api), namespace: k.namespace };
  };
  return {
    contexts: async (t) => (await raw(t)).contexts.map((c) => c.name),
    clusters: async (t) => (await raw(t)).clusters.map((c) => c.name),
    users: async (t) => (await raw(t)).users.map((u) => u.name),
    namespaces: async (t) => {
      const cfg = await raw(t).catch(() => ({ contexts: [] as { name: string; context?: { namespace?: string } }[] }));
      const fromConfig = cfg.contexts.map((c) => c.context?.namespace).filter((n): n is string => !!n);
      const fromCluster = await withTimeout((async () => {
        const { core } = await api(t);
        return (await core.listNamespace()).items.map((n) => n.metadata?.name ?? '').filter((n) => n !== '');
      })(), timeoutMs, [] as string[]);
      return [...fromCluster, ...fromConfig];
    },
    services: (t) => withTimeout((async () => {
      const { core, namespace } = await api(t);
      return (await core.listNamespacedService({ namespace })).items.map((s) => s.metadata?.name ?? '').filter((n) => n !== '');
    })(), timeoutMs, [] as string[]),
    deployments: (t) => withTimeout((async () => {
      const { loadKube } = await import('../kube/kubeconfig.ts');
      const { AppsV1Api } = await import('@kubernetes/client-node');
      const k = loadKube(t, env);
      return (await k.kc.makeApiClient(AppsV1Api).listNamespacedDeployment({ namespace: k.namespace })).items.map((d) => d.metadata?.name ?? '').filter((n) => n !== '');
    })(), timeoutMs, [] as string[]),
    pods: (t) => withTimeout((async () => {
      const { core, namespace } = await api(t);
      return (await core.listNamespacedPod({ namespace })).items.map((p) => p.metadata?.name ?? '').filter((n) => n !== '');
    })(), timeoutMs, [] as string[]),
  };
}

/** `<plugin> __complete words...`: prints the candidates; always exits 0, as cobra does. */
export async function runComplete(spec: Command, words: string[], descriptions = true, sources = clusterSources()): Promise<number> {
  let c: Completion;
  try {
    c = await complete(spec, words, sources);
  } catch {
    c = { candidates: [], directive: Directive.Error };
  }
  process.stdout.write(formatCompletion(c, descriptions));
  return 0;
}

const fnName = (command: string): string => `__kt_complete_${command.replace(/[^A-Za-z0-9]/g, '_')}`;

/** A completion script for the plugin run by its file name (kubectl-kt_connect). */
export function completionScript(shell: (typeof SHELLS)[number], plugin: string): string {
  const command = `kubectl-${plugin.replaceAll('-', '_')}`;
  const fn = fnName(command);
  const header = [
    `${shell === 'zsh' ? `#compdef ${command}\n` : ''}# ${shell} completion for ${command} (kubectl ${plugin}), printed by 'kubectl ${plugin} completion ${shell}'.`,
    `# It completes ${command} run by its own name. 'kubectl ${plugin} <TAB>' is completed by kubectl's`,
    `# own completion (kubectl 1.26+), which runs kubectl_complete-${plugin.replaceAll('-', '_')} from PATH.`,
  ].join('\n');
  if (shell === 'bash') {
    return `${header}
${fn}() {
    local line=\${COMP_LINE:0:COMP_POINT} words out directive cur c
    read -r -a words <<< "$line"
    [[ $line == *[[:space:]] ]] && words+=("")
    cur=\${words[\${#words[@]}-1]}
    out=$("\${words[0]}" __complete "\${words[@]:1}" 2>/dev/null) || return
    directive=\${out##*:}
    out=\${out%:*}
    COMPREPLY=()
    while IFS='' read -r c; do
        [[ -n $c ]] && COMPREPLY+=("\${c%%$'\\t'*}")
    done <<< "$out"
    # Bash splits words at = and :, so a candidate replaces only what follows the last of them.
    if [[ $cur == *[=:]* ]]; then
        local pre=\${cur%"\${cur##*[=:]}"}
        COMPREPLY=("\${COMPREPLY[@]#"$pre"}")
    fi
    (( directive & 2 )) && compopt -o nospace 2>/dev/null
    if (( directive & 4 )) || (( \${#COMPREPLY[@]} )); then
        compopt +o default 2>/dev/null
    fi
    return 0
}
complete -o default -F ${fn} ${command}
`;
  }
  if (shell === 'powershell') {
    return `${header}
# Load it in a profile: kubectl ${plugin} completion powershell | Out-String | Invoke-Expression
Register-ArgumentCompleter -Native -CommandName '${command}', '${command}.exe' -ScriptBlock {
    param($WordToComplete, $CommandAst, $CursorPosition)
    # The words before the cursor, and the one being completed (empty after a space).
    $words = @($CommandAst.CommandElements | Where-Object { $_.Extent.StartOffset -lt $CursorPosition } | ForEach-Object { $_.Extent.Text })
    if ($WordToComplete -eq '') { $words += '' }
    $program = $words[0]
    $rest = @($words | Select-Object -Skip 1)
    # An empty argument must reach the program as one: PowerShell drops '' unless quoted so.
    $quoted = $rest | ForEach-Object { if ($_ -eq '') { '""' } else { $_ } }
    $out = @(& $program __complete @quoted 2>$null)
    if ($out.Count -eq 0) { return }
    $directive = [int]($out[-1].TrimStart(':'))
    $found = $false
    foreach ($line in $out[0..($out.Count - 2)]) {
        if ($line -eq '') { continue }
        $parts = $line -split "\`t", 2
        $value = $parts[0]
        $tip = if ($parts.Count -gt 1 -and $parts[1] -ne '') { $parts[1] } else { $value }
        $found = $true
        [System.Management.Automation.CompletionResult]::new($value, $value, 'ParameterValue', $tip)
    }
    # NoFileComp (4): no file names when the program offers nothing.
    if (-not $found -and ($directive -band 4)) { '' }
}
`;
  }
  if (shell === 'zsh') {
    return `${header}
${fn}() {
    local out directive c
    local -a lines cands
    out=$("\${words[1]}" __complete "\${(@)words[2,CURRENT]}" 2>/dev/null) || return 1
    lines=("\${(@f)out}")
    directive=\${lines[-1]#:}
    for c in "\${(@)lines[1,-2]}"; do
        [[ -z $c ]] && continue
        if [[ $c == *$'\\t'* ]]; then
            cands+=("\${\${c%%$'\\t'*}//:/\\\\:}:\${c#*$'\\t'}")
        else
            cands+=("\${c//:/\\\\:}")
        fi
    done
    if (( \${#cands} )); then
        if (( directive & 2 )); then _describe -t kt 'kt' cands -S ''; else _describe -t kt 'kt' cands; fi
    elif (( ! (directive & 4) )); then
        _files
    fi
}
compdef ${fn} ${command}
`;
  }
  return `${header}
function ${fn}
    set -l words (commandline -opc) (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] 2>/dev/null)
    or return
    for c in $out[1..-2]
        test -n "$c"; and echo $c
    end
end
function ${fn}_files
    set -l words (commandline -opc) (commandline -ct)
    set -l out ($words[1] __complete $words[2..-1] 2>/dev/null)
    test (count $out) -eq 1; and test "$out[1]" = ':0'
end
complete -c ${command} -f -a '(${fn})'
complete -c ${command} -n '${fn}_files' -F
`;
}
