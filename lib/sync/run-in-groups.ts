/**
 * Runs a batch of queued items the way a FIFO queue wants it: each message group's items one
 * after another, in order, and different groups at the same time, so one customer's slow answer
 * or wait holds up no other customer. When an item fails, the rest of its group is not started
 * (it must come back after it, in order): all of them are reported failed.
 */
export interface GroupedItem {
  id: string;
  groupId: string;
}

export async function runInGroups<T extends GroupedItem>(
  items: readonly T[],
  run: (item: T) => Promise<unknown>,
): Promise<{ failed: T[]; errors: Map<string, unknown> }> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(item.groupId, [...(groups.get(item.groupId) ?? []), item]);
  const failedIds = new Set<string>();
  const errors = new Map<string, unknown>();
  await Promise.all(
    [...groups.values()].map(async (group) => {
      for (const [index, item] of group.entries()) {
        try {
          await run(item);
        } catch (error) {
          errors.set(item.id, error);
          for (const rest of group.slice(index)) failedIds.add(rest.id);
          return;
        }
      }
    }),
  );
  return { failed: items.filter((item) => failedIds.has(item.id)), errors };
}
