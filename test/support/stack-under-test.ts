import { join, relative } from 'node:path';
import { afterAll, beforeAll, beforeEach, expect } from 'vitest';
import type { KlaviyoSandbox } from '../../local/klaviyo-sandbox.js';
import { SERVICE_DIR } from '../../scripts/local-stack/offline.js';
import { type LocalStack, startLocalStack } from '../../scripts/local-stack/stack.js';
import { freePort } from './ports.js';
import { useTempDir } from './temp-dir.js';

export interface StackUnderTest {
  readonly stack: LocalStack;
  readonly sandbox: KlaviyoSandbox;
  /** The HTTP API, e.g. http://127.0.0.1:PORT */
  readonly baseUrl: string;
}

/**
 * The whole stack as `npm start` runs it (peers, serverless-offline, queue poller), on free ports,
 * for the tests of one file: started before them, stopped after them, leaving no process behind.
 * serverless-offline's output is shown for a failing test. `settings` are set as in the shell
 * running `npm start`, e.g. `{ KLAVIYO_TIMEOUT_MS: '1500' }`.
 */
export function useLocalStack(label: string, settings: Record<string, string> = {}): StackUnderTest {
  const output: string[] = [];
  const tempDir = useTempDir(label);
  let started: { stack: LocalStack; baseUrl: string } | undefined;

  beforeAll(async () => {
    const httpPort = await freePort();
    try {
      const stack = await startLocalStack({
        peers: {}, // port 0: free ports
        env: { ...process.env, ...settings },
        httpPort,
        lambdaPort: await freePort(),
        // serverless-esbuild joins this onto the service dir: a relative path into our temp dir,
        // so parallel test files do not share (and delete) one build folder.
        esbuildWorkFolder: relative(SERVICE_DIR, join(tempDir(), 'esbuild')),
        onOutput: (line) => output.push(line),
        onPollError: (error) => output.push(`[poller] ${error}`),
      });
      started = { stack, baseUrl: `http://127.0.0.1:${httpPort}` };
    } catch (error) {
      throw new Error(`local stack did not start:\n${output.join('\n')}`, { cause: error });
    }
  }, 120_000);

  afterAll(async () => {
    const group = started?.stack.offline.processGroup;
    await started?.stack.stop();
    if (group !== undefined)
      expect(processGroupAlive(group), 'serverless-offline left processes behind').toBe(false);
  });

  beforeEach(({ onTestFailed }) => {
    output.length = 0;
    onTestFailed(() => console.error(`serverless-offline output:\n${output.join('\n')}`));
  });

  const current = () => {
    if (!started) throw new Error('the local stack has not started');
    return started;
  };
  return {
    get stack() {
      return current().stack;
    },
    get sandbox() {
      return current().stack.peers.klaviyo as KlaviyoSandbox;
    },
    get baseUrl() {
      return current().baseUrl;
    },
  };
}

/** Signal 0 tests for existence: does anything of serverless-offline's process group remain? */
function processGroupAlive(group: number): boolean {
  try {
    process.kill(-group, 0);
    return true;
  } catch {
    return false;
  }
}
