// Who a request comes from, for the enrolment limit. fastify works out request.ip from http.trustedProxies
// (its trustProxy: X-Forwarded-For read from the right, trusted hops skipped, a header from anyone else
// ignored); this file checks that list and turns the answer into one key per client.
import { isIP } from "node:net";

/** Parses `192.0.2.0/24`, `2001:db8::/32` or a single address; undefined when it is none of these. */
export function parseCidr(s: string): { address: string; prefix: number; family: "ipv4" | "ipv6" } | undefined {
  const [address = "", prefixText, ...rest] = s.trim().split("/");
  if (rest.length) return undefined;
  const v = isIP(address);
  if (v === 0) return undefined;
  const max = v === 4 ? 32 : 128;
  if (prefixText !== undefined && !/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = prefixText === undefined ? max : Number(prefixText);
  if (prefix > max) return undefined;
  return { address, prefix, family: v === 4 ? "ipv4" : "ipv6" };
}

/** fastify's trustProxy for http.trustedProxies: the checked list, or false (the socket's peer counts). */
export function trustProxyOption(cidrs: readonly string[] | undefined): string[] | false {
  if (!cidrs?.length) return false;
  for (const c of cidrs) if (!parseCidr(c)) throw new Error(`http.trustedProxies: not an address or CIDR range: ${JSON.stringify(c)}`);
  return cidrs.map((c) => c.trim());
}

/** `::ffff:192.0.2.1` → `192.0.2.1`, so one client has one key whichever way the address is written. */
function plainIp(addr: string): string {
  const m = /^::ffff:(\d{1,3}(?:\.\d{1,3}){3})$/i.exec(addr);
  return m ? (m[1] as string) : addr;
}

/**
 * The rate-limit key of a request: fastify's request.ip. When a trusted proxy named something that is no
 * address, the last trusted hop (the entry before it in request.ips) counts instead: a made-up string must
 * not become a key of its own.
 */
export function clientKey(request: { ip: string | undefined; ips?: string[] | undefined }): string {
  const ip = request.ip ?? "unknown";
  if (isIP(ip) !== 0) return plainIp(ip);
  const hops = request.ips ?? [];
  return plainIp(hops[hops.length - 2] ?? "unknown");
}
