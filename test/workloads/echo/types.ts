// The shapes the echo workload sends, shared by the servers and the client helpers.
import type { IncomingHttpHeaders } from 'node:http';

/** The JSON body of every HTTP echo reply. */
export interface HttpEcho {
  pod: string;
  method: string;
  /** The request target as sent, query string included. */
  path: string;
  headers: IncomingHttpHeaders;
  /** The request body decoded as UTF-8. */
  body: string;
}

/** The first WebSocket message, sent by the server as soon as the connection opens. */
export interface WsHello {
  pod: string;
  path: string;
  headers: IncomingHttpHeaders;
}

export interface EchoRequest {
  message: string;
  count: number;
}

export interface EchoReply {
  message: string;
  pod: string;
  metadata: Record<string, string>;
  index: number;
}

/** The response header that names the pod that served an HTTP request. */
export const POD_HEADER = 'x-echo-pod';
