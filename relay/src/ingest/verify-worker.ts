// A verify worker: parses, validates and checks the signature of chunks of event messages for Ingest.
// It holds no authority of its own: every chunk brings the keys the registry gave for its hubs.
import { parentPort } from "node:worker_threads";
import { verifyOne, type VerifyRequest, type VerifyResponse } from "./verify-wire.js";

const port = parentPort;
if (!port) throw new Error("verify-worker must run as a worker thread");

// The same Buffer object for the same key bytes, so the signing module's per-Buffer KeyObject is reused.
const keys = new Map<string, Buffer>();
function keyFor(hub: string, bytes: Uint8Array | null): Buffer | null {
  if (!bytes) {
    keys.delete(hub);
    return null;
  }
  const had = keys.get(hub);
  if (had && had.equals(bytes)) return had;
  const key = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  keys.set(hub, key);
  return key;
}

port.on("message", (req: VerifyRequest) => {
  const table = req.keyTable.map((k, i) => keyFor(req.keyHubs[i] as string, k));
  const out: VerifyResponse["out"] = new Array<VerifyResponse["out"][number]>(req.texts.length);
  for (let i = 0; i < req.texts.length; i++) {
    out[i] = verifyOne(req.hubs[i] as string, req.texts[i] as string, table[req.keys[i] as number] ?? null);
  }
  port.postMessage({ chunk: req.chunk, out } satisfies VerifyResponse);
});

port.postMessage("ready");
