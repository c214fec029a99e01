// Posts one still to the relay over HTTPS (the relay's certificate checked against caFile when given), signed
// with the hub's key (protocol/stills.ts), and says what the relay's answer means for the still: stored,
// try again later, or never again. Nothing here logs; the URL it is given carries no credentials.
import { createHash } from "node:crypto";
import http from "node:http";
import https from "node:https";
import { signStill, stillHeaders, STILLS_UPLOAD_PATH, type StillClaim } from "../../../protocol/stills.js";

export interface UploadTarget {
  /** The relay's base address (https://, or http:// to this machine). */
  url: string;
  ca?: Buffer;
  timeoutMs: number;
  hub: string;
  key: Buffer;
}

export interface StillToSend {
  event: string;
  still: string;
  index: number;
  takenAt: number;
  bytes: Buffer;
}

export type UploadOutcome =
  /** Stored now, or stored before (a retry whose first answer was lost). */
  | { kind: "stored" }
  /** Worth another try later: the relay or the path is down, or the alarm has not reached the relay yet. */
  | { kind: "retry"; reason: string }
  /** The relay's clock is far from ours: sign again with its clock. */
  | { kind: "clock"; relayNow: number }
  /** The relay has no recorded camera consent for this home: stop reading the camera. */
  | { kind: "no_consent" }
  /** Refused for good (a bad signature, a bad image): sending it again would change nothing. */
  | { kind: "refused"; reason: string };

/** Signs and sends one still; `ts` is our best idea of the relay's clock. Never rejects. */
export async function uploadStill(t: UploadTarget, s: StillToSend, ts: number, signal: AbortSignal): Promise<UploadOutcome> {
  const claim: StillClaim = { hub: t.hub, event: s.event, still: s.still, index: s.index, takenAt: s.takenAt, ts, sha256: createHash("sha256").update(s.bytes).digest("hex"), bytes: s.bytes.length };
  let answer: { status: number; body: { error?: unknown; now?: unknown } };
  try {
    answer = await post(t, { ...stillHeaders(claim, signStill(claim, t.key)), "content-type": "image/jpeg" }, s.bytes, signal);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    return { kind: "retry", reason: err.name === "TimeoutError" || err.name === "AbortError" ? "no answer in time" : (err.code ?? err.message) };
  }
  const code = typeof answer.body.error === "string" ? answer.body.error : `http_${answer.status}`;
  if (answer.status === 201 || answer.status === 200 || (answer.status === 409 && code === "replay")) return { kind: "stored" };
  if (answer.status === 401 && code === "stale" && typeof answer.body.now === "number") return { kind: "clock", relayNow: answer.body.now };
  if (answer.status === 403 && code === "no_consent") return { kind: "no_consent" };
  if (answer.status >= 500 || answer.status === 429 || answer.status === 408 || (answer.status === 404 && code === "unknown_event")) return { kind: "retry", reason: code };
  return { kind: "refused", reason: code };
}

function post(t: UploadTarget, headers: Record<string, string>, body: Buffer, signal: AbortSignal): Promise<{ status: number; body: { error?: unknown; now?: unknown } }> {
  const base = t.url.endsWith("/") ? t.url.slice(0, -1) : t.url;
  const u = new URL(`${base}${STILLS_UPLOAD_PATH}`);
  const deadline = AbortSignal.any([AbortSignal.timeout(t.timeoutMs), signal]);
  return new Promise((resolve, reject) => {
    const options = { method: "POST", headers: { ...headers, "content-length": String(body.length), accept: "application/json" }, signal: deadline, agent: false as const };
    const onAnswer = (res: http.IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (c: Buffer) => {
        // The answer is a small JSON object; anything long is cut, not buffered.
        if ((size += c.length) <= 16_384) chunks.push(c);
      });
      res.on("end", () => {
        let parsed: { error?: unknown; now?: unknown } = {};
        try {
          const v = JSON.parse(Buffer.concat(chunks).toString("utf8")) as unknown;
          if (v && typeof v === "object") parsed = v;
        } catch {
          // not JSON: the status alone speaks
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
      res.on("error", reject);
      res.on("close", () => {
        if (!res.complete) reject(Object.assign(new Error("the answer was cut short"), { code: "ECONNRESET" }));
      });
    };
    const req = u.protocol === "https:" ? https.request(u, { ...options, ...(t.ca ? { ca: t.ca } : {}) }, onAnswer) : http.request(u, options, onAnswer);
    req.on("error", (e) => reject(deadline.aborted ? Object.assign(new Error("no answer in time"), { name: "TimeoutError" }) : e));
    req.end(body);
  });
}
