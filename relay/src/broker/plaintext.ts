// TLS by default outside this machine: the embedded broker listens without TLS only on a loopback address,
// unless the configuration says `broker.allowPlaintext: true` (and then it says so at every start). Used by
// the configuration check (a clear error before anything starts) and by the broker itself.
import { isIP } from "node:net";

/** 127.0.0.0/8, ::1 (also IPv4-mapped, ::ffff:127.x), `localhost`: only this machine can connect. */
export function isLoopbackHost(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1").replace(/\.$/, "");
  if (h === "localhost" || h.endsWith(".localhost")) return true;
  if (isIP(h) === 6) {
    if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
    const mapped = /^(?:0{0,4}:){0,5}:?ffff:(.+)$/.exec(h)?.[1];
    if (mapped === undefined) return false;
    if (isIP(mapped) === 4) return mapped.startsWith("127.");
    return /^7f[0-9a-f]{2}:[0-9a-f]{1,4}$/.test(mapped);
  }
  return isIP(h) === 4 && h.startsWith("127.");
}

/**
 * Why this listener may not start, or null: a listener without TLS on anything but loopback (0.0.0.0 and ::
 * included) would carry hub passwords, events, acks and commands in clear, unless allowPlaintext says so.
 */
export function plaintextListenerProblem(host: string, tls: boolean, allowPlaintext: boolean | undefined): string | null {
  if (tls || allowPlaintext === true || isLoopbackHost(host)) return null;
  return (
    `the embedded broker would listen on ${host || "every address"} without TLS, so hub passwords, events, acks and commands would cross the network in clear. ` +
    `Give it a certificate (broker.tls: {certFile, keyFile}), listen on 127.0.0.1 (hubs on this machine only), ` +
    `or set broker.allowPlaintext: true to accept that knowingly (e.g. a TLS-terminating proxy in front); hubs then need uplink.allowPlaintext: true too`
  );
}
