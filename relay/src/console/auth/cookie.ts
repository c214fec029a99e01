// The session cookie: `anxin_console`, HttpOnly (scripts never see the id), SameSite=Strict (never sent with
// a request another site starts), Path=/, no expiry (it goes when the browser closes; the relay ends the
// session on its own clock anyway), and Secure.
//
// Secure is left off in one case only: a request over plain http to a loopback name or address (localhost,
// 127.0.0.0/8, ::1), i.e. someone at the relay host itself or through an SSH tunnel, where nothing crosses a
// network and a browser would otherwise have no way to sign in without TLS. Everywhere else the cookie is
// Secure, and a browser reaching the relay over plain http on the network cannot sign in: the console is to
// be served through TLS (the reverse proxy in front of the relay, which must pass X-Forwarded-Proto and be
// trusted for it to count). The decision uses the address the browser used (the Host header), which is the
// one the browser applies its cookie rules to.
import type { CookieSerializeOptions } from "@fastify/cookie";
import { isLoopbackHost } from "../../broker/plaintext.js";

export const SESSION_COOKIE = "anxin_console";

/** `protocol` and `hostname` as the request came (fastify's request.protocol and request.hostname). */
export function cookieIsSecure(req: { protocol: string; hostname: string }): boolean {
  return !(req.protocol === "http" && isLoopbackHost(req.hostname));
}

export function sessionCookieOptions(secure: boolean): CookieSerializeOptions {
  return { httpOnly: true, sameSite: "strict", path: "/", secure };
}
