// host:port text, the one way every side writes it (logs, Host headers, error sentences).

/** `host:port`, with brackets around an IPv6 literal (one already in brackets is left as it is). */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
