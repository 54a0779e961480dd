import { createServer, request as forward, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP proxy in front of a local AWS peer (dynalite, the Secrets Manager endpoint) that
 * fails requests on demand, as the service does when it throttles or is down: the functions are
 * pointed at the proxy, the tests' own reads go to the peer directly.
 */
export type AwsFaultKind =
  /** 400 ThrottlingException, which the SDK retries with backoff, then gives up. */
  | 'throttle'
  /** 503 ServiceUnavailable. */
  | 'unavailable'
  /** The connection dropped with no answer. */
  | 'reset';

export interface AwsFault {
  kind: AwsFaultKind;
  /** Chance that a request meets the fault (default 1). */
  probability?: number;
  /** How long the fault lasts (default: until cleared). */
  forMs?: number;
}

export interface FaultProxy {
  url: string;
  /** Where requests are forwarded; set once the peer is up. */
  target: string;
  inject(fault: AwsFault): void;
  clear(): void;
  /** Requests failed on purpose so far, by kind. */
  readonly failed: Record<AwsFaultKind, number>;
  stop(): Promise<void>;
}

const AWS_ERRORS: Record<Exclude<AwsFaultKind, 'reset'>, { status: number; type: string }> = {
  throttle: { status: 400, type: 'ThrottlingException' },
  unavailable: { status: 503, type: 'ServiceUnavailable' },
};

export async function startFaultProxy(): Promise<FaultProxy> {
  let fault: { kind: AwsFaultKind; probability: number; until: number } | undefined;
  const failed: Record<AwsFaultKind, number> = { throttle: 0, unavailable: 0, reset: 0 };
  let target = '';

  const current = () => {
    if (fault && fault.until <= Date.now()) fault = undefined;
    return fault && Math.random() < fault.probability ? fault.kind : undefined;
  };

  function handle(req: IncomingMessage, res: ServerResponse) {
    const kind = current();
    if (kind) failed[kind]++;
    if (kind === 'reset') {
      req.socket.destroy();
      return;
    }
    if (kind) {
      const { status, type } = AWS_ERRORS[kind];
      // Both JSON protocols (DynamoDB's 1.0, Secrets Manager's 1.1) read the error's type from here.
      res.writeHead(status, { 'content-type': 'application/x-amz-json-1.1', 'x-amzn-errortype': type });
      res.end(JSON.stringify({ __type: type, message: 'Injected fault (fault proxy)' }));
      return;
    }
    const upstream = forward(
      `${target}${req.url ?? '/'}`,
      { method: req.method, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => req.socket.destroy());
    req.pipe(upstream);
  }

  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    get target() {
      return target;
    },
    set target(url: string) {
      target = url;
    },
    inject({ kind, probability = 1, forMs }) {
      fault = {
        kind,
        probability,
        until: forMs === undefined ? Number.POSITIVE_INFINITY : Date.now() + forMs,
      };
    },
    clear() {
      fault = undefined;
    },
    failed,
    async stop() {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}
