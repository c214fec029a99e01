// HTTP digest authentication, client side (RFC 7616, with RFC 2617's qop-less form that older cameras still
// send): the challenges in WWW-Authenticate, and the Authorization answering one. MD5 and SHA-256, plain and
// -sess, qop=auth. No library for it is installed; this is small enough to own and is tested against the RFCs'
// own examples (test/unit/digest-auth.test.ts).
import { createHash, randomBytes } from "node:crypto";

export interface Challenge {
  scheme: string;
  params: Record<string, string>;
}

export type DigestAlgorithm = "MD5" | "MD5-sess" | "SHA-256" | "SHA-256-sess";
const ALGORITHMS: readonly DigestAlgorithm[] = ["MD5", "MD5-sess", "SHA-256", "SHA-256-sess"];

/**
 * Every challenge in one or more WWW-Authenticate values: `Digest realm="a, b", nonce="…", Basic realm="x"`.
 * Parameter names are lower-cased; quoted values are unescaped. Anything unparsable ends the list.
 */
export function parseChallenges(values: readonly string[]): Challenge[] {
  const out: Challenge[] = [];
  for (const value of values) {
    let i = 0;
    const s = value;
    const skip = (re: RegExp) => {
      while (i < s.length && re.test(s[i]!)) i++;
    };
    const token = () => {
      const m = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+/.exec(s.slice(i));
      if (!m) return null;
      i += m[0].length;
      return m[0];
    };
    let current: Challenge | null = null;
    while (i < s.length) {
      skip(/[\s,]/);
      if (i >= s.length) break;
      const start = i;
      const name = token();
      if (!name) break;
      skip(/[ \t]/);
      if (s[i] === "=" && current) {
        i++;
        skip(/[ \t]/);
        let v: string;
        if (s[i] === '"') {
          i++;
          v = "";
          while (i < s.length && s[i] !== '"') {
            if (s[i] === "\\" && i + 1 < s.length) i++;
            v += s[i++];
          }
          i++;
        } else {
          const t = token();
          if (t === null) break;
          v = t;
        }
        current.params[name.toLowerCase()] = v;
      } else if (s[i] === "=") {
        break; // a parameter before any scheme: not a challenge
      } else {
        // A bare token: a new scheme (token68 credentials are not used by digest, so none are expected).
        i = start + name.length;
        current = { scheme: name, params: {} };
        out.push(current);
      }
    }
  }
  return out;
}

/** The digest challenge to answer: SHA-256 before MD5 when the camera offers both, qop auth (or none) only. */
export function pickDigest(challenges: readonly Challenge[]): Challenge | undefined {
  const usable = challenges.filter((c) => {
    if (c.scheme.toLowerCase() !== "digest" || !c.params.realm || !c.params.nonce) return false;
    if (!ALGORITHMS.includes(algorithmOf(c))) return false;
    const qop = c.params.qop;
    return qop === undefined || qop.split(",").some((q) => q.trim() === "auth");
  });
  return usable.find((c) => algorithmOf(c).startsWith("SHA-256")) ?? usable[0];
}

function algorithmOf(c: Challenge): DigestAlgorithm {
  const a = c.params.algorithm ?? "MD5";
  return (ALGORITHMS.find((x) => x.toLowerCase() === a.toLowerCase()) ?? a) as DigestAlgorithm;
}

const hash = (alg: DigestAlgorithm, s: string) => createHash(alg.startsWith("SHA-256") ? "sha256" : "md5").update(s, "utf8").digest("hex");

export interface DigestInput {
  username: string;
  password: string;
  method: string;
  /** The request-target as sent: path and query. */
  uri: string;
  /** The nonce count for this nonce, from 1. */
  nc: number;
  /** Defaults to 16 random bytes, hex. */
  cnonce?: string;
}

/** The response value and the whole Authorization header answering `c`. */
export function digestAuthorization(c: Challenge, i: DigestInput): { response: string; header: string } {
  const alg = algorithmOf(c);
  const { realm = "", nonce = "", opaque } = c.params;
  const qop = c.params.qop === undefined ? undefined : "auth";
  const cnonce = i.cnonce ?? randomBytes(16).toString("hex");
  const nc = i.nc.toString(16).padStart(8, "0");
  let ha1 = hash(alg, `${i.username}:${realm}:${i.password}`);
  if (alg.endsWith("-sess")) ha1 = hash(alg, `${ha1}:${nonce}:${cnonce}`);
  const ha2 = hash(alg, `${i.method}:${i.uri}`);
  const response = qop ? hash(alg, `${ha1}:${nonce}:${nc}:${cnonce}:${qop}:${ha2}`) : hash(alg, `${ha1}:${nonce}:${ha2}`);
  const q = (v: string) => `"${v.replace(/(["\\])/g, "\\$1")}"`;
  const parts = [`username=${q(i.username)}`, `realm=${q(realm)}`, `uri=${q(i.uri)}`, `algorithm=${alg}`, `nonce=${q(nonce)}`];
  if (qop) parts.push(`nc=${nc}`, `cnonce=${q(cnonce)}`, `qop=${qop}`);
  parts.push(`response=${q(response)}`);
  if (opaque !== undefined) parts.push(`opaque=${q(opaque)}`);
  return { response, header: `Digest ${parts.join(", ")}` };
}

/** True when the challenge says only the nonce went stale (the password was right). */
export function isStale(c: Challenge): boolean {
  return c.params.stale?.toLowerCase() === "true";
}
