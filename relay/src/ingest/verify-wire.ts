// Messages between Ingest's verify pool and its workers. Kept small: only what the row and the batch
// need comes back, as a flat tuple, because structured cloning is paid per field on both threads.
import type { Envelope } from "../../../protocol/envelope.js";
import { checkSignature, parseEnvelope, type Rejected } from "./verify-check.js";

/** One chunk of messages: hubs[i] and texts[i] belong together; keys[i] indexes keyTable (hubs' keys, null: none). */
export interface VerifyRequest {
  chunk: number;
  hubs: string[];
  texts: string[];
  keys: number[];
  keyHubs: string[];
  keyTable: Array<Uint8Array | null>;
}

/** id, boot, seq, ts, kind, type, severity, device (or null), historical (0/1). */
export type Facts = [string, number, number, number, Envelope["kind"], string, Envelope["severity"], string | null, 0 | 1];

export interface VerifyResponse {
  chunk: number;
  /** One per message, in order: the facts of an accepted envelope, or why it was rejected. */
  out: Array<Facts | Rejected>;
}

export function factsOf(e: Envelope): Facts {
  return [e.id, e.boot, e.seq, e.ts, e.kind, e.type, e.severity, e.device ?? null, e.historical === true ? 1 : 0];
}

/** The checks for one message, the same whether run inline or in a worker. */
export function verifyOne(hub: string, text: string, key: Buffer | null): Facts | Rejected {
  const p = parseEnvelope(hub, text);
  if (!p.ok) return p;
  return checkSignature(p.env, key) ?? factsOf(p.env);
}
