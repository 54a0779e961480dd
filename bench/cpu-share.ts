import { existsSync } from 'node:fs';
import { mkdir, rmdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Lambda gives a function a share of a vCPU in proportion to its memory (1,769 MB: one vCPU), so a
 * function's duration at 128 MB is not its duration on a full core. Here a process gets that share
 * through a Linux cgroup CPU quota (v1 `cpu` controller or v2 `cpu.max`; needs root), so a
 * benchmark can measure durations at each memory size. Returns a function that removes the cgroup
 * once the process has exited.
 */
export const LAMBDA_MB_PER_VCPU = 1_769;

const PERIOD_US = 100_000;

export async function runAtCpuShare(pid: number, memorySize: number): Promise<() => Promise<void>> {
  const share = Math.min(1, memorySize / LAMBDA_MB_PER_VCPU);
  const quota = Math.round(share * PERIOD_US);
  const v1 = '/sys/fs/cgroup/cpu';
  const v2 = '/sys/fs/cgroup';
  const name = `klaviyo-identity-sync-bench-${pid}`;
  try {
    if (existsSync(join(v1, 'cpu.cfs_quota_us'))) {
      const dir = join(v1, name);
      await mkdir(dir);
      await writeFile(join(dir, 'cpu.cfs_period_us'), String(PERIOD_US));
      await writeFile(join(dir, 'cpu.cfs_quota_us'), String(quota));
      await writeFile(join(dir, 'cgroup.procs'), String(pid));
      return () => rmdir(dir);
    }
    if (existsSync(join(v2, 'cgroup.controllers'))) {
      const dir = join(v2, name);
      await mkdir(dir);
      await writeFile(join(dir, 'cpu.max'), `${quota} ${PERIOD_US}`);
      await writeFile(join(dir, 'cgroup.procs'), String(pid));
      return () => rmdir(dir);
    }
  } catch (error) {
    throw new Error(
      `cannot give the process ${(share * 100).toFixed(1)}% of a CPU (a cgroup CPU quota needs Linux and root): ${(error as Error).message}`,
    );
  }
  throw new Error('cannot give the process a share of a CPU: no cgroup CPU controller found');
}
