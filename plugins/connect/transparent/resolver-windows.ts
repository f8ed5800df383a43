// Cluster names on Windows: one Name Resolution Policy Table rule sends the cluster domain and the
// namespaces, and only those, to kt's local DNS server. The Windows DNS client asks a policy's
// name servers on port 53 only, so there the local DNS server listens on 127.0.0.1:53. Adding and
// removing the rule needs an elevated shell ("Run as administrator"). The rule's comment carries
// the session id: the undo removes exactly that rule, kt-clean those of dead sessions.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import type { Cleaner } from '../mode.ts';
import { runSteps, type OsCommand, type OsPlan } from '../os-plan.ts';

const run = promisify(execFile);

const COMMENT_PREFIX = 'kt-session=';
const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;
const SESSION = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function powershell(script: string): OsCommand {
  return { argv: ['powershell.exe', '-NoProfile', '-NonInteractive', '-Command', script], admin: true };
}

function removeRule(sessionId: string): OsCommand {
  return powershell(`Get-DnsClientNrptRule | Where-Object { $_.Comment -eq '${COMMENT_PREFIX}${sessionId}' } | Remove-DnsClientNrptRule -Force`);
}

export interface NrptInput {
  sessionId: string;
  clusterDomain: string;
  namespaces: readonly string[];
  /** kt's local DNS server (port 53). */
  nameserver: string;
}

export function nrptPlan(input: NrptInput): { plan: OsPlan } | { error: string } {
  const domains = [...new Set([input.clusterDomain.toLowerCase().replace(/\.$/, ''), ...[...input.namespaces].sort()])];
  const bad = domains.find((d) => !DOMAIN.test(d));
  if (bad !== undefined) return { error: `"${bad}" is not a DNS name kt can add a name resolution policy for.` };
  if (!SESSION.test(input.sessionId)) return { error: `session id "${input.sessionId}" cannot be a rule comment.` };
  if (!/^[0-9.]+$|^[0-9a-f:]+$/i.test(input.nameserver)) return { error: `"${input.nameserver}" is not an IP address.` };
  const namespaces = domains.map((d) => `'.${d}'`).join(',');
  return {
    plan: {
      apply: { commands: [powershell(`Add-DnsClientNrptRule -Namespace ${namespaces} -NameServers '${input.nameserver}' -Comment '${COMMENT_PREFIX}${input.sessionId}'`)], write: [], remove: [] },
      undo: { commands: [removeRule(input.sessionId)], write: [], remove: [] },
    },
  };
}

/** Lists the comments of kt's rules, one a line (kt-clean reads them). */
export const LIST_KT_RULES = powershell(`Get-DnsClientNrptRule | Where-Object { $_.Comment -like '${COMMENT_PREFIX}*' } | ForEach-Object { $_.Comment }`);

/** The undo commands for the rules of dead sessions, from LIST_KT_RULES' output. */
export function staleNrptUndo(listed: string, isLive: (id: string) => boolean): OsCommand[] {
  return listed.split(/\r?\n/).map((l) => l.trim()).filter((l) => l.startsWith(COMMENT_PREFIX))
    .map((l) => l.slice(COMMENT_PREFIX.length)).filter((id) => SESSION.test(id) && !isLive(id)).map(removeRule);
}

export function nrptCleaner(isLive: (id: string) => boolean): Cleaner {
  return async (dryRun) => {
    const listed = await run(LIST_KT_RULES.argv[0]!, LIST_KT_RULES.argv.slice(1)).then((r) => r.stdout, () => '');
    const undo = staleNrptUndo(listed, isLive);
    const ids = undo.map((c) => /kt-session=([^']+)/.exec(c.argv.at(-1)!)![1]!);
    if (!dryRun) await runSteps({ commands: undo, write: [], remove: [] }).catch(() => undefined);
    return ids.map((id) => `${dryRun ? 'would remove' : 'removed'} the name resolution policy rule of session ${id}`);
  };
}
