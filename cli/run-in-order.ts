export interface RunInOrderOptions<T> {
  concurrency: number;
  /** Once aborted, tasks not started yet go to `skip` instead of `run`. */
  signal: AbortSignal;
  run(task: T): Promise<void>;
  skip(task: T): void;
}

/**
 * Runs tasks `concurrency` customers at a time, but each customer's tasks one after another in
 * file order, as the queue's FIFO groups do: a customer's later row never overtakes an earlier one.
 */
export async function runInCustomerOrder<T extends { externalId: string }>(
  tasks: T[],
  options: RunInOrderOptions<T>,
): Promise<void> {
  const byCustomer = new Map<string, T[]>();
  for (const task of tasks) {
    const group = byCustomer.get(task.externalId);
    if (group) group.push(task);
    else byCustomer.set(task.externalId, [task]);
  }
  const customers = [...byCustomer.values()];
  let next = 0;

  const worker = async () => {
    for (let group = customers[next++]; group; group = customers[next++]) {
      for (const task of group) {
        if (options.signal.aborted) options.skip(task);
        else await options.run(task);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, options.concurrency) }, worker));
}

/** `fn` over `items`, at most `limit` at once, the results in the items' order. */
export async function mapConcurrently<T, R>(
  items: readonly T[],
  limit: number,
  fn: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) results[i] = await fn(items[i] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return results;
}
