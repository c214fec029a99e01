// One console's server-sent event stream: `incident` (a row, on opening and on every change of state, step
// or taker) and `removed` ({id}, once closed), only for incidents on the person's streets. The stream
// starts with the rows the feed holds, so a console that reconnects is whole again without a re-fetch.
// Memory is bounded: while the socket is backed up, frames wait coalesced per incident (only the latest
// row matters), and a console that falls further behind than `maxPending` incidents is cut off; its
// EventSource reconnects after `retry` and starts from the current rows.
import type { OutgoingHttpHeaders } from "node:http";
import type { FastifyReply } from "fastify";
import { inStreetScope, type StreetScope } from "../../households/street-scope.js";
import type { ChangeFeed, QueueChange } from "./feed.js";

export interface StreamOptions {
  heartbeatMs: number;
  retryMs: number;
  maxPending: number;
  /** Asked every aliveCheckMs: false (the session ended) or a failure ends the stream. */
  alive?: () => Promise<boolean>;
  aliveCheckMs?: number;
}

function frameOf(c: QueueChange): [key: string, frame: string] {
  return c.kind === "incident"
    ? [c.row.id, `event: incident\ndata: ${JSON.stringify(c.row)}\n\n`]
    : [c.id, `event: removed\ndata: ${JSON.stringify({ id: c.id })}\n\n`];
}

/** Takes the response over and streams until the client goes or its `end` is called; `open` holds the `end` of every stream still open. */
export function serveStream(reply: FastifyReply, feed: ChangeFeed, scope: StreetScope, o: StreamOptions, open: Set<() => void>): void {
  reply.hijack();
  const res = reply.raw;
  // Headers the sign-in set on the reply (a refreshed session) go out too.
  const set: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(reply.getHeaders())) if (v !== undefined) set[k] = v;
  res.writeHead(200, {
    ...set,
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache, no-transform",
    connection: "keep-alive",
    // nginx and others buffer a response unless told not to: a buffered stream is a stale queue.
    "x-accel-buffering": "no",
  });
  const pending = new Map<string, string>();
  let blocked = !res.write(`retry: ${o.retryMs}\n\n`);
  let ended = false;
  const subscription = { off: () => {} };

  const end = () => {
    if (ended) return;
    ended = true;
    clearInterval(heartbeat);
    clearInterval(sessionCheck);
    subscription.off();
    pending.clear();
    res.end();
    open.delete(end);
  };
  open.add(end);
  const send = (key: string, frame: string) => {
    if (!blocked) {
      blocked = !res.write(frame);
      return;
    }
    pending.delete(key); // re-inserted last: the frames keep the order of their latest change
    pending.set(key, frame);
    if (pending.size > o.maxPending) end();
  };
  res.on("drain", () => {
    blocked = false;
    for (const [key, frame] of pending) {
      pending.delete(key);
      if (!res.write(frame)) {
        blocked = true;
        return;
      }
    }
  });
  const heartbeat = setInterval(() => {
    // A comment line: proxies see traffic, EventSource ignores it.
    if (!blocked) blocked = !res.write(": keep-alive\n\n");
  }, o.heartbeatMs);
  heartbeat.unref();
  // A signed-out or expired session gets nothing more: the browser's reconnect then meets the 401.
  const alive = o.alive;
  const sessionCheck = alive
    ? setInterval(() => {
        alive().then(
          (ok) => ok || end(),
          () => end(),
        );
      }, o.aliveCheckMs ?? 5000)
    : undefined;
  sessionCheck?.unref();
  res.on("close", end);
  subscription.off = feed.subscribe((c) => {
    if (!ended && inStreetScope(scope, c.street)) send(...frameOf(c));
  });
  // Cut off while taking the starting rows: the subscription came back after end() looked for it.
  if (ended) subscription.off();
}
