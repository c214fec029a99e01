// The journal's SQLite thread. Requests that queued up while a commit was syncing are drained together,
// and consecutive appends among them share one transaction: one fsync for the whole group.
import { parentPort, receiveMessageOnPort } from "node:worker_threads";
import type { EventRow, OpenResult, Reply, RequestMessage, WireError } from "./messages.js";
import { JournalStore } from "./store.js";

if (!parentPort) throw new Error("journal worker: must run as a worker thread");
const port = parentPort;
let store: JournalStore | null = null;

function wireError(err: unknown): WireError {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === "string" ? { message: err.message, code } : { message: err.message };
  }
  return { message: String(err) };
}

function need(): JournalStore {
  if (!store) throw new Error("journal worker: database is not open");
  return store;
}

function handle(msg: RequestMessage): unknown {
  switch (msg.op) {
    case "open": {
      store?.close();
      store = new JournalStore(msg.path, msg.maxRows, msg.bumpBoot);
      const result: OpenResult = { boot: store.boot, lastId: store.lastId, state: null };
      // A damaged state row must not keep the journal (and the hub) from starting: it is reported instead.
      try {
        result.state = store.readState();
      } catch (err) {
        result.stateError = wireError(err).message;
      }
      return result;
    }
    case "pending":
      return need().pending(msg.limit, msg.now);
    case "markSent":
      return need().markSent(msg.ids, msg.nextAttemptAt, msg.countAttempt);
    case "ack":
      return need().ack(msg.ids);
    case "stats":
      return need().stats();
    case "pragma":
      return need().pragma(msg.sql);
    case "close":
      store?.close();
      store = null;
      return undefined;
    case "append":
      throw new Error("journal worker: append is handled in groups");
  }
}

function commitGroup(group: RequestMessage[], replies: Reply[]): void {
  const rows: EventRow[] = [];
  // Only the newest rules' state of the group is written; it commits with the group's rows.
  let state: string | undefined;
  for (const m of group) {
    if (m.op !== "append") continue;
    for (const r of m.rows) rows.push(r);
    if (m.state !== undefined) state = m.state;
  }
  try {
    need().append(rows, state);
    for (const m of group) replies.push({ rid: m.rid, ok: true, value: undefined });
  } catch (err) {
    const error = wireError(err);
    for (const m of group) replies.push({ rid: m.rid, ok: false, error });
  }
}

function run(batch: RequestMessage[]): void {
  let group: RequestMessage[] = [];
  for (const msg of batch) {
    if (msg.op === "append") {
      group.push(msg);
      continue;
    }
    // Keep request order: appends queued before this request are committed first.
    if (group.length > 0) {
      const replies: Reply[] = [];
      commitGroup(group, replies);
      port.postMessage(replies);
      group = [];
    }
    let reply: Reply;
    try {
      reply = { rid: msg.rid, ok: true, value: handle(msg) };
    } catch (err) {
      reply = { rid: msg.rid, ok: false, error: wireError(err) };
    }
    port.postMessage([reply]);
  }
  if (group.length > 0) {
    const replies: Reply[] = [];
    commitGroup(group, replies);
    port.postMessage(replies);
  }
}

port.on("message", (first: RequestMessage) => {
  const batch = [first];
  for (let next = receiveMessageOnPort(port); next; next = receiveMessageOnPort(port)) {
    batch.push(next.message as RequestMessage);
  }
  run(batch);
});
