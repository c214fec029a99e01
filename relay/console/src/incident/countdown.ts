// The call tree's countdown to its next step, drawn against the relay's clock: the answer carries the relay's
// time, and the difference to the browser's is kept, so a desk PC a minute off still counts down right.

/** The relay's clock minus the browser's, from an answer's `serverNow` and when the browser got it. */
export const clockOffset = (serverNow: number, receivedAt: number): number => serverNow - receivedAt;

/** Milliseconds until `at` on the relay's clock (negative once past). */
export const remainingMs = (at: number, browserNow: number, offset: number): number => at - (browserNow + offset);
