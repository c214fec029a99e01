// A home camera for tests: a node:http server answering its snapshot address with a JPEG behind HTTP digest
// authentication (RFC 7616, qop=auth; SHA-256 and MD5 offered, as ONVIF cameras do). It checks every digest
// itself — its own code, not the hub's — and counts every request, so a test can prove the hub never touched
// the camera outside an alarm.
import { createHash, randomBytes } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

/** A 32×24 JPEG (a blue frame with a yellow square), made by Chromium's canvas encoder. */
export const STANDIN_JPEG = Buffer.from("/9j/4AAQSkZJRgABAQAAAQABAAD/4gHYSUNDX1BST0ZJTEUAAQEAAAHIAAAAAAQwAABtbnRyUkdCIFhZWiAH4AABAAEAAAAAAABhY3NwAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAQAA9tYAAQAAAADTLQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAlkZXNjAAAA8AAAACRyWFlaAAABFAAAABRnWFlaAAABKAAAABRiWFlaAAABPAAAABR3dHB0AAABUAAAABRyVFJDAAABZAAAAChnVFJDAAABZAAAAChiVFJDAAABZAAAAChjcHJ0AAABjAAAADxtbHVjAAAAAAAAAAEAAAAMZW5VUwAAAAgAAAAcAHMAUgBHAEJYWVogAAAAAAAAb6IAADj1AAADkFhZWiAAAAAAAABimQAAt4UAABjaWFlaIAAAAAAAACSgAAAPhAAAts9YWVogAAAAAAAA9tYAAQAAAADTLXBhcmEAAAAAAAQAAAACZmYAAPKnAAANWQAAE9AAAApbAAAAAAAAAABtbHVjAAAAAAAAAAEAAAAMZW5VUwAAACAAAAAcAEcAbwBvAGcAbABlACAASQBuAGMALgAgADIAMAAxADb/2wBDAA0JCgsKCA0LCgsODg0PEyAVExISEyccHhcgLikxMC4pLSwzOko+MzZGNywtQFdBRkxOUlNSMj5aYVpQYEpRUk//2wBDAQ4ODhMREyYVFSZPNS01T09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT09PT0//wAARCAAYACADASIAAhEBAxEB/8QAFwABAQEBAAAAAAAAAAAAAAAAAAUHBv/EABoQAQABBQAAAAAAAAAAAAAAAAACBRVUo9H/xAAXAQEBAQEAAAAAAAAAAAAAAAAABAMF/8QAIREAAAUDBQEAAAAAAAAAAAAAAAECAxEEEjIFITFBYXH/2gAMAwEAAhEDEQA/AJanYKpi7I9TGlNdSrnKW2wi3nnyBJSsJdm7ocRYKpi7I9TGlM1NNrnKq68i2jj2QqmEtRb2Cnf6pla48B0XGW3M0kf0pEyVqTicBf6pla48TAG2W28EkXwoBS1KyOR//9k=", "base64");

export interface CameraStandin {
  /** The snapshot address to put in hub.yaml. */
  snapshotUrl: string;
  /** Every request, whatever it asked. */
  requests: number;
  /** Requests answered with an image (a good digest). */
  served: number;
  /** Requests with an Authorization that did not verify. */
  badDigests: number;
  /** The algorithm of each digest that verified. */
  algorithms: string[];
  close(): Promise<void>;
}

export interface CameraStandinOptions {
  username: string;
  password: string;
  /** Offered in this order; default SHA-256 then MD5. */
  algorithms?: Array<"SHA-256" | "MD5">;
  realm?: string;
  jpeg?: Buffer;
}

const PATH = "/onvif-http/snapshot?Profile_1";

function params(header: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of header.replace(/^Digest\s+/i, "").matchAll(/([a-z0-9-]+)=(?:"((?:[^"\\]|\\.)*)"|([^\s,]+))/gi)) out[m[1]!.toLowerCase()] = (m[2] ?? m[3] ?? "").replace(/\\(.)/g, "$1");
  return out;
}

export async function startCameraStandin(o: CameraStandinOptions): Promise<CameraStandin> {
  const realm = o.realm ?? "IP Camera(C1234)";
  const algorithms = o.algorithms ?? ["SHA-256", "MD5"];
  const nonces = new Map<string, number>(); // nonce → highest nc seen
  const state = { requests: 0, served: 0, badDigests: 0, algorithms: [] as string[] };
  const challenge = (res: http.ServerResponse) => {
    const nonce = randomBytes(16).toString("hex");
    nonces.set(nonce, 0);
    res.setHeader("www-authenticate", algorithms.map((a) => `Digest realm="${realm}", qop="auth", algorithm=${a}, nonce="${nonce}", opaque="5ccc069c403ebaf9f0171e9517f40e41"`));
    res.writeHead(401, { "content-type": "text/plain" }).end("401 Unauthorized");
  };
  const server = http.createServer((req, res) => {
    state.requests++;
    if (req.method !== "GET" || req.url !== PATH) return void res.writeHead(404).end();
    const auth = req.headers.authorization;
    if (!auth) return challenge(res);
    const p = params(auth);
    const alg = p.algorithm ?? "MD5";
    const h = (s: string) => createHash(alg === "SHA-256" ? "sha256" : "md5").update(s).digest("hex");
    const seen = p.nonce === undefined ? undefined : nonces.get(p.nonce);
    const nc = parseInt(p.nc ?? "", 16);
    const expected = h(`${h(`${o.username}:${realm}:${o.password}`)}:${p.nonce}:${p.nc}:${p.cnonce}:auth:${h(`GET:${req.url}`)}`);
    const ok = algorithms.includes(alg as "MD5") && seen !== undefined && nc > seen && p.qop === "auth" && p.uri === req.url && p.username === o.username && p.realm === realm && p.response === expected;
    if (!ok) {
      state.badDigests++;
      return challenge(res);
    }
    nonces.set(p.nonce!, nc);
    state.served++;
    state.algorithms.push(alg);
    const body = o.jpeg ?? STANDIN_JPEG;
    res.writeHead(200, { "content-type": "image/jpeg", "content-length": body.length }).end(body);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const port = (server.address() as AddressInfo).port;
  const standin: CameraStandin = Object.assign(state, {
    snapshotUrl: `http://127.0.0.1:${port}${PATH}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  });
  return standin;
}
