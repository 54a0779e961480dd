import { setImmediate as tick } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { runInCustomerOrder } from '../../cli/run-in-order.js';

const tasks = (...customers: string[]) =>
  customers.map((externalId, index) => ({ line: index + 2, externalId }));

describe('runInCustomerOrder', () => {
  it("runs each customer's rows one after another in file order, customers side by side", async () => {
    const events: string[] = [];
    let inFlight = 0;
    let mostInFlight = 0;
    await runInCustomerOrder(tasks('a', 'b', 'a', 'c', 'a', 'b'), {
      concurrency: 2,
      signal: new AbortController().signal,
      async run(task) {
        mostInFlight = Math.max(mostInFlight, ++inFlight);
        events.push(`start ${task.externalId}${task.line}`);
        await tick();
        events.push(`end ${task.externalId}${task.line}`);
        inFlight--;
      },
      skip: () => undefined,
    });
    expect(mostInFlight).toBe(2);
    const ofA = events.filter((event) => event.includes(' a'));
    expect(ofA).toEqual(['start a2', 'end a2', 'start a4', 'end a4', 'start a6', 'end a6']);
    expect(events.filter((event) => event.startsWith('end'))).toHaveLength(6);
  });

  it('hands the tasks not started to skip once aborted', async () => {
    const stop = new AbortController();
    const ran: number[] = [];
    const skipped: number[] = [];
    await runInCustomerOrder(tasks('a', 'b', 'c', 'd'), {
      concurrency: 1,
      signal: stop.signal,
      async run(task) {
        ran.push(task.line);
        stop.abort('key refused');
      },
      skip: (task) => skipped.push(task.line),
    });
    expect(ran).toEqual([2]);
    expect(skipped).toEqual([3, 4, 5]);
  });
});
