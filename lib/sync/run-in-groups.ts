/**
 * Runs a batch of queued items the way a FIFO queue wants it: each message group's items one
 * after another, in order, and different groups at the same time, so one customer's slow answer
 * or wait holds up no other customer. When an item fails, the rest of its group is not started
 * (it must come back after it, in order): all of them are reported failed. An item fails when its
 * run throws, or returns what `fails` says is a failure.
 */
export interface GroupedItem {
  id: string;
  groupId: string;
}

export async function runInGroups<T extends GroupedItem, R = unknown>(
  items: readonly T[],
  run: (item: T) => Promise<R>,
  /** Whether an item's result fails it as a throw would; the result is then its entry in `errors`. */
  fails: (result: R) => boolean = () => false,
): Promise<{ failed: T[]; errors: Map<string, unknown> }> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(item.groupId, [...(groups.get(item.groupId) ?? []), item]);
  const failedIds = new Set<string>();
  const errors = new Map<string, unknown>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      for (const [index, item] of group.entries()) {
        let why: unknown;
        try {
          const result = await run(item);
          if (!fails(result)) continue;
          why = result;
        } catch (error) {
          why = error;
        }
        errors.set(item.id, why);
        for (const rest of group.slice(index)) failedIds.add(rest.id);
        return;
      }
    }),
  );
  return { failed: items.filter((item) => failedIds.has(item.id)), errors };
}
