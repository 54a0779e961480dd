import { describe, expect, it } from 'vitest';
import { runInGroups } from '../../lib/sync/run-in-groups.js';

const item = (id: string, groupId: string) => ({ id, groupId });
const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('runInGroups', () => {
  it("runs each group's items in order, one at a time", async () => {
    const events: string[] = [];
    const items = [item('a1', 'a'), item('b1', 'b'), item('a2', 'a'), item('a3', 'a'), item('b2', 'b')];
    await runInGroups(items, async ({ id }) => {
      events.push(`start ${id}`);
      await tick();
      events.push(`end ${id}`);
    });
    const ofA = events.filter(
      (event) => event.endsWith('a1') || event.endsWith('a2') || event.endsWith('a3'),
    );
    expect(ofA).toEqual(['start a1', 'end a1', 'start a2', 'end a2', 'start a3', 'end a3']);
  });

  it("does not let one group's slow item delay another group", async () => {
    let releaseSlow: () => void = () => undefined;
    const slow = new Promise<void>((resolve) => {
      releaseSlow = resolve;
    });
    const finished: string[] = [];
    const run = runInGroups([item('slow', 'a'), item('b1', 'b'), item('b2', 'b')], async ({ id }) => {
      if (id === 'slow') await slow;
      finished.push(id);
    });
    for (let i = 0; i < 5; i++) await tick();
    // b's two items are done while a's first is still waiting.
    expect(finished).toEqual(['b1', 'b2']);
    releaseSlow();
    await run;
    expect(finished).toEqual(['b1', 'b2', 'slow']);
  });

  it('fails the rest of a group after a failure, without running it, and leaves other groups alone', async () => {
    const ran: string[] = [];
    const items = [item('a1', 'a'), item('b1', 'b'), item('a2', 'a'), item('b2', 'b'), item('a3', 'a')];
    const { failed, errors } = await runInGroups(items, async ({ id }) => {
      ran.push(id);
      if (id === 'a2') throw new Error('Klaviyo is throttling');
    });
    expect(failed.map(({ id }) => id)).toEqual(['a2', 'a3']);
    expect(ran).not.toContain('a3');
    expect(ran).toEqual(expect.arrayContaining(['a1', 'a2', 'b1', 'b2']));
    expect((errors.get('a2') as Error).message).toBe('Klaviyo is throttling');
  });

  it('reports nothing failed when every item succeeds', async () => {
    const { failed } = await runInGroups([item('a1', 'a'), item('b1', 'b')], async () => undefined);
    expect(failed).toEqual([]);
  });
});
