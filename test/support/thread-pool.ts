// Holds every thread of libuv's pool, as a stuck SD card or DNS lookups on a dead network would: file-system
// calls, DNS lookups and anything else queued there wait until release.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { access, open } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { setTimeout as sleep } from "node:timers/promises";

export interface HeldPool {
  release(): Promise<void>;
}

/** Holds every thread of libuv's pool: each opens a FIFO for reading, which blocks until a writer comes. */
export async function holdThreadPool(): Promise<HeldPool> {
  const dir = mkdtempSync(path.join(tmpdir(), "anxin-pool-"));
  const threads = Number(process.env.UV_THREADPOOL_SIZE ?? 4) + 2;
  const fifos = Array.from({ length: threads }, (_, i) => path.join(dir, `f${i}`));
  const made = spawnSync("mkfifo", fifos);
  assert.equal(made.status, 0, `mkfifo: ${made.stderr.toString()}`);
  const held = fifos.map((f) => open(f, "r"));
  // Proof that the pool is held: a file-system call queued behind the FIFOs does not finish.
  let probed = false;
  const probe = access(dir).then(() => (probed = true));
  await sleep(300);
  assert.equal(probed, false, "the thread pool is held");
  return {
    async release() {
      // Opening the write end does not block: the reader is already there.
      for (const f of fifos) closeSync(openSync(f, "w"));
      for (const h of await Promise.all(held)) await h.close();
      await probe;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}


/** A deadline for work done while the pool is held: `stuck` resolves to "stuck" unless cancelled first. */
export function stuckAfter(ms: number): { stuck: Promise<"stuck">; cancel(): void } {
  let timer: NodeJS.Timeout | undefined;
  const stuck = new Promise<"stuck">((resolve) => (timer = setTimeout(() => resolve("stuck"), ms)));
  return { stuck, cancel: () => clearTimeout(timer) };
}
