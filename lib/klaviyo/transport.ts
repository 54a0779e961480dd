import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';

/**
 * One HTTP exchange with Klaviyo on Node's own http/https modules. Node's built-in clients cost
 * the worker nothing to load, where the npm undici client cost about 30 ms of cold start and
 * 20 MiB (bench/RESULTS.md). Connections are kept alive and shared by every client of a process,
 * so warm invocations reuse them; `timeoutMs` bounds each wait for the answer's headers and for
 * each part of its body, as a socket that stays silent that long is given up.
 */
export interface HttpExchange {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
  timeoutMs: number;
  agent?: HttpAgent;
}

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

const KEEP_ALIVE = { keepAlive: true, keepAliveMsecs: 30_000, maxSockets: 16 };
const sharedAgents = { http: new HttpAgent(KEEP_ALIVE), https: new HttpsAgent(KEEP_ALIVE) };

export function exchange({
  method,
  url,
  headers,
  body,
  timeoutMs,
  agent,
}: HttpExchange): Promise<HttpAnswer> {
  const target = new URL(url);
  const secure = target.protocol === 'https:';
  const send = secure ? httpsRequest : httpRequest;
  return new Promise((resolve, reject) => {
    const request = send(
      target,
      {
        method,
        agent: agent ?? (secure ? sharedAgents.https : sharedAgents.http),
        headers: body === undefined ? headers : { ...headers, 'content-length': Buffer.byteLength(body) },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            headers: response.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    request.setTimeout(timeoutMs, () =>
      request.destroy(new Error(`no answer within ${timeoutMs} ms (request timeout)`)),
    );
    request.on('error', reject);
    request.end(body);
  });
}

/**
 * One request through the client's machinery (pacing, retries, typed errors), as the client's
 * parts (bulk-import.ts) send it: what came back is its status and parsed JSON body.
 */
export type KlaviyoSend = (
  method: 'GET' | 'POST' | 'PATCH',
  path: string,
  body?: unknown,
) => Promise<{ status: number; json: unknown }>;
