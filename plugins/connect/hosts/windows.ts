// Hosts mode on Windows: the hosts file lives under the Windows folder, which is not always C:\Windows;
// editing it needs an elevated shell ("Run as administrator").
import { win32 } from 'node:path';

/** The hosts file of this OS: %SystemRoot%\System32\drivers\etc\hosts on Windows, /etc/hosts elsewhere. */
export function defaultHostsFile(platform: NodeJS.Platform = process.platform, env: NodeJS.ProcessEnv = process.env): string {
  if (platform !== 'win32') return '/etc/hosts';
  return win32.join(env.SystemRoot ?? env.windir ?? 'C:\\Windows', 'System32', 'drivers', 'etc', 'hosts');
}
