// Waiting in tests: for a condition (polled every 10 ms, with a hang guard), or for a while.
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the probe's first truthy value; throws naming `what` after `ms`. */
export async function waitFor<T>(what: string, probe: () => T | undefined | false | Promise<T | undefined | false>, ms = 10_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await probe();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}
