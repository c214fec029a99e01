// Reads one still from the camera's snapshot address: a GET, answered 401 with a digest challenge the first
// time, then again with the Authorization. The challenge is kept for the next still of the burst (nonce count
// + 1), so later stills cost one request unless the camera says the nonce went stale. Bounded in time and size;
// only a JPEG is accepted. Nothing here logs: the caller reports outcomes without the address or credentials.
import http from "node:http";
import https from "node:https";
import { looksLikeJpeg } from "../../../protocol/stills.js";
import { digestAuthorization, parseChallenges, pickDigest, type Challenge } from "./digest.js";

export class SnapshotError extends Error {
  override name = "SnapshotError";
  constructor(
    readonly reason: "timeout" | "unreachable" | "unauthorized" | "no_digest" | "too_large" | "not_jpeg" | "http_status",
    message: string,
  ) {
    super(message);
  }
}

export interface SnapshotSource {
  url: string;
  username: string;
  password: string;
  timeoutMs: number;
  maxBytes: number;
}

interface Answer {
  status: number;
  challenges: Challenge[];
  contentType: string;
  body: Buffer;
}

/** One camera's digest session across the stills of a burst. */
export class SnapshotReader {
  private challenge: Challenge | undefined;
  private nc = 0;

  constructor(private readonly src: SnapshotSource) {}

  /** One still (JPEG bytes). Rejects with SnapshotError; never runs longer than timeoutMs. */
  async read(signal?: AbortSignal): Promise<Buffer> {
    const deadline = AbortSignal.any([AbortSignal.timeout(this.src.timeoutMs), ...(signal ? [signal] : [])]);
    let a = await this.get(this.challenge ? this.authorization() : undefined, deadline);
    if (a.status === 401) {
      // The first still of a burst, or a kept nonce the camera no longer takes: answer its newest challenge, once.
      const fresh = pickDigest(a.challenges);
      this.challenge = fresh;
      this.nc = 0;
      if (!fresh) throw new SnapshotError(a.challenges.length ? "no_digest" : "unauthorized", "the camera asks for no digest authentication this hub can answer");
      a = await this.get(this.authorization(), deadline);
      if (a.status === 401) {
        this.challenge = undefined;
        throw new SnapshotError("unauthorized", "the camera refused the user name and password");
      }
    }
    if (a.status !== 200) throw new SnapshotError("http_status", `the camera answered HTTP ${a.status}`);
    if (!/^image\/jpe?g\b/i.test(a.contentType) || !looksLikeJpeg(a.body)) throw new SnapshotError("not_jpeg", `the camera's answer is not a JPEG (${a.contentType || "no content type"})`);
    return a.body;
  }

  private authorization(): string {
    const u = new URL(this.src.url);
    return digestAuthorization(this.challenge!, { username: this.src.username, password: this.src.password, method: "GET", uri: `${u.pathname}${u.search}`, nc: ++this.nc }).header;
  }

  private get(authorization: string | undefined, signal: AbortSignal): Promise<Answer> {
    const u = new URL(this.src.url);
    const lib = u.protocol === "https:" ? https : http;
    return new Promise<Answer>((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const req = lib.request(u, { method: "GET", headers: { accept: "image/jpeg", ...(authorization ? { authorization } : {}) }, signal, agent: false }, (res) => {
        const declared = Number(res.headers["content-length"] ?? NaN);
        if (declared > this.src.maxBytes) {
          res.destroy();
          return reject(new SnapshotError("too_large", `the camera's answer is ${declared} bytes (limit ${this.src.maxBytes})`));
        }
        const chunks: Buffer[] = [];
        let size = 0;
        res.on("data", (c: Buffer) => {
          size += c.length;
          if (size > this.src.maxBytes) {
            res.destroy();
            reject(new SnapshotError("too_large", `the camera's answer is over ${this.src.maxBytes} bytes`));
            return;
          }
          chunks.push(c);
        });
        res.on("end", () => {
          // rawHeaders keeps each WWW-Authenticate apart (headers[] would join them with commas).
          const values: string[] = [];
          for (let i = 0; i + 1 < res.rawHeaders.length; i += 2) if (res.rawHeaders[i]!.toLowerCase() === "www-authenticate") values.push(res.rawHeaders[i + 1]!);
          resolve({ status: res.statusCode ?? 0, challenges: parseChallenges(values), contentType: res.headers["content-type"] ?? "", body: Buffer.concat(chunks) });
        });
        res.on("error", (e) => reject(translate(e, signal)));
        // A body cut short (the deadline, the camera going away) ends in close without end.
        res.on("close", () => {
          if (!res.complete) reject(translate(new Error("the answer was cut short"), signal));
        });
      });
      req.on("error", (e) => reject(translate(e, signal)));
      req.end();
    });
  }
}

function abortError(signal: AbortSignal): SnapshotError {
  return (signal.reason as Error | undefined)?.name === "TimeoutError" ? new SnapshotError("timeout", "the camera did not answer in time") : new SnapshotError("timeout", "stopped");
}

function translate(e: Error, signal: AbortSignal): Error {
  if (e instanceof SnapshotError) return e;
  if (signal.aborted) return abortError(signal);
  return new SnapshotError("unreachable", `cannot reach the camera: ${(e as NodeJS.ErrnoException).code ?? e.message}`);
}
