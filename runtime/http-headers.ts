// Which HTTP header fields belong to one connection and are never forwarded: the one list the
// laptop's HTTP proxy and the router's HTTP/1.1 and HTTP/2 paths start from.

/**
 * The connection-specific fields of RFC 9110 section 7.6.1: Connection (and the fields it names,
 * which each caller reads from the message), Proxy-Connection, Keep-Alive, TE, Transfer-Encoding
 * and Upgrade. An intermediary must not forward them.
 */
export const CONNECTION_FIELDS: readonly string[] = ['connection', 'proxy-connection', 'keep-alive', 'te', 'transfer-encoding', 'upgrade'];

/**
 * The lower-case names a hop drops: the RFC's list plus `also` (what that hop answers itself, or
 * what its protocol forbids), minus `except` (a field the caller sorts out on its own, such as
 * `TE: trailers`, which a backend may need).
 */
export function hopByHopFields(o: { also?: readonly string[]; except?: readonly string[] } = {}): ReadonlySet<string> {
  const names = new Set([...CONNECTION_FIELDS, ...(o.also ?? [])]);
  for (const name of o.except ?? []) names.delete(name);
  return names;
}
