// Timing policy of the uplink: how long an unacknowledged event waits before it is sent again, and how
// long the session waits before the next connection attempt.

/** Cap on the wait before an unacknowledged event is sent again. */
export const MAX_RESEND_MS = 5 * 60_000;

/** Wait after the send numbered `attempts` (0 = first send): ackTimeoutMs, doubled per earlier attempt, capped. */
export function resendDelay(attempts: number, ackTimeoutMs: number, maxMs = MAX_RESEND_MS): number {
  return Math.min(maxMs, ackTimeoutMs * 2 ** Math.min(Math.max(attempts, 0), 30));
}

/**
 * Wait before reconnecting after `failures` consecutive failed attempts: exponential, with jitter in the
 * upper half so a fleet of hubs that lost the relay together does not come back in one burst.
 * Always within [minMs, maxMs].
 */
export function reconnectDelay(failures: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(failures + 1, 30));
  return Math.round(Math.min(maxMs, Math.max(minMs, ceiling / 2 + (random() * ceiling) / 2)));
}
