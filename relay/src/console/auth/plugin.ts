// The console's sign-in as a fastify plugin: the session routes under /console/api/session, and
// `app.consoleUser(roles?)`, the preHandler every other console route puts in front of itself.
//
// It assumes nothing of the app it is registered into: it registers @fastify/cookie unless the app has it
// already (then it must be registered before this plugin), keeps its zod compilers to its own routes, and is
// not encapsulated itself (as fastify-plugin would do, here with fastify's own symbol) so that
// `app.consoleUser` and `request.consoleUser` reach the routes registered beside it.
import fastifyCookie from "@fastify/cookie";
import fastifyRateLimit from "@fastify/rate-limit";
import type { FastifyBaseLogger, FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest, preHandlerAsyncHookHandler } from "fastify";
import { validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { Kysely } from "kysely";
import { z } from "zod";
import { clientKey } from "../../api/client-address.js";
import { failureStore } from "../../api/enrol-failures.js";
import type { Role } from "../../auth/tokens.js";
import type { RelayDbHandle } from "../../store/closed-loop-schema.js";
import { userActor, type Account } from "./accounts.js";
import type { ConsoleConfig } from "./config.js";
import { cookieIsSecure, SESSION_COOKIE, sessionCookieOptions } from "./cookie.js";
import { CSRF_HEADER, csrfTokenFor, csrfTokenMatches, needsCsrf, originMatches } from "./csrf.js";
import { dummyHash, PASSWORD_MAX_LENGTH } from "./password.js";
import { findSession, sessionLimits, touchSession } from "./sessions.js";
import { recordExpiry, signIn, signOut } from "./sign-in.js";
import { consoleAuthDb, type ConsoleAuthDb } from "./tables.js";

export interface ConsoleAuthOptions {
  /** The relay's store (consoleAuthMigrations applied). */
  db: RelayDbHandle | Kysely<ConsoleAuthDb>;
  /** The clock sessions are timed by (ms). */
  now: () => number;
  log: Pick<FastifyBaseLogger, "info" | "warn">;
  /** The relay's configuration, or anything with its `console` section. */
  config: { console: ConsoleConfig };
}

/** The person behind a console request. */
export interface ConsoleUser {
  id: string;
  username: string;
  displayName: string;
  role: Role;
  /** The streets the account is limited to; absent: every street. */
  streets?: readonly string[];
  /** For the audit log and incident timelines: `user:<username>`. */
  actor: string;
}

declare module "fastify" {
  interface FastifyInstance {
    /**
     * A preHandler for a console route: a live session (401 `no_session` / `session_expired`), Origin matching
     * Host when sent (403 `origin`), the CSRF token in `x-csrf-token` on anything but GET/HEAD/OPTIONS
     * (403 `csrf`), one of `roles` when given (403 `forbidden`). Sets request.consoleUser.
     */
    consoleUser(roles?: readonly Role[]): preHandlerAsyncHookHandler;
    /**
     * The same checks as consoleUser(), called directly: the signed-in person, or undefined when the request
     * has been answered (401/403) already.
     */
    consoleAuthenticate(request: FastifyRequest, reply: FastifyReply, roles?: readonly Role[]): Promise<ConsoleUser | undefined>;
    /**
     * Whether the request's session is still live, without counting as activity (an open stream asks this
     * now and then and ends when it is not). An expiry found here is recorded like any other.
     */
    consoleSessionAlive(request: FastifyRequest): Promise<boolean>;
  }
  interface FastifyRequest {
    /** Set by app.consoleUser()'s preHandler; null on routes without it. */
    consoleUser: ConsoleUser | null;
  }
}

/** Sent by the page on requests it makes by itself (polls), which do not count as the person's activity. */
export const BACKGROUND_HEADER = "x-anxin-background";

const signInBody = z.object({ username: z.string().max(200), password: z.string().max(PASSWORD_MAX_LENGTH * 4) }).strict();

const userBody = (a: Pick<Account, "username" | "displayName" | "role" | "streets">) => ({ username: a.username, displayName: a.displayName, role: a.role, ...(a.streets ? { streets: a.streets } : {}) });

/** The request's session cookie (parsed here, so the app's cookie hook settings do not matter). */
function sessionIdOf(app: FastifyInstance, request: FastifyRequest): string | undefined {
  const header = request.headers.cookie;
  return header ? app.parseCookie(header)[SESSION_COOKIE] : undefined;
}

const consoleAuth: FastifyPluginAsync<ConsoleAuthOptions> = async (app, opts) => {
  const db = consoleAuthDb(opts.db);
  const limits = sessionLimits(opts.config.console);
  if (!app.hasDecorator("parseCookie")) await app.register(fastifyCookie);
  // Made now, so the first unknown username takes as long as the ones after it.
  await dummyHash();

  const clearCookie = (request: FastifyRequest, reply: FastifyReply) => reply.clearCookie(SESSION_COOKIE, sessionCookieOptions(cookieIsSecure(request)));
  /** Answers from here carry the CSRF token or say who is signed in: never cached. */
  const noStore = (reply: FastifyReply) => reply.header("cache-control", "no-store");

  /** The checks of app.consoleUser(); undefined when it has answered the request itself. */
  async function authenticate(request: FastifyRequest, reply: FastifyReply, roles: readonly Role[] | undefined): Promise<{ user: ConsoleUser; sessionId: string } | undefined> {
    if (!originMatches(request.headers.origin, request.host)) {
      await reply.code(403).send({ error: "origin" });
      return undefined;
    }
    const at = opts.now();
    const sessionId = sessionIdOf(app, request);
    const found = await findSession(db, sessionId, at, limits);
    if (found.state !== "live" || sessionId === undefined) {
      if (found.state === "expired" && found.ended) {
        await recordExpiry(db, found.username, found.reason, at);
        opts.log.info({ username: found.username, reason: found.reason }, "console session expired");
      }
      if (sessionId !== undefined) clearCookie(request, reply);
      await noStore(reply).code(401).send({ error: found.state === "expired" ? "session_expired" : "no_session" });
      return undefined;
    }
    if (needsCsrf(request.method) && !csrfTokenMatches(sessionId, request.headers[CSRF_HEADER])) {
      await reply.code(403).send({ error: "csrf" });
      return undefined;
    }
    // A page's own refreshes (the incident page's poll, the homes board's) say so: they are not the person
    // using the page, and must not keep an unattended screen signed in past the idle timeout.
    if (request.headers[BACKGROUND_HEADER] !== "1") await touchSession(db, found.idHash, at);
    const a = found.account;
    if (roles && !roles.includes(a.role)) {
      await reply.code(403).send({ error: "forbidden" });
      return undefined;
    }
    const user: ConsoleUser = { id: a.id, username: a.username, displayName: a.displayName, role: a.role, ...(a.streets ? { streets: a.streets } : {}), actor: userActor(a.username) };
    request.consoleUser = user;
    return { user, sessionId };
  }

  app.decorate("consoleSessionAlive", async (request: FastifyRequest) => {
    const at = opts.now();
    const found = await findSession(db, sessionIdOf(app, request), at, limits);
    if (found.state === "expired" && found.ended) {
      await recordExpiry(db, found.username, found.reason, at);
      opts.log.info({ username: found.username, reason: found.reason }, "console session expired");
    }
    return found.state === "live";
  });
  app.decorateRequest("consoleUser", null);
  app.decorate("consoleAuthenticate", async (request: FastifyRequest, reply: FastifyReply, roles?: readonly Role[]) => (await authenticate(request, reply, roles))?.user);
  app.decorate("consoleUser", (roles?: readonly Role[]): preHandlerAsyncHookHandler => {
    return async function consoleUserPreHandler(request, reply) {
      await authenticate(request, reply, roles);
    };
  });

  // The routes in a context of their own, so the zod validator applies to them alone.
  await app.register(async (r) => {
    r.setValidatorCompiler(validatorCompiler);
    const routes = r.withTypeProvider<ZodTypeProvider>();
    // Failed sign-ins count against the address (any usernames): one machine cannot try a password on
    // every account, which the per-account lockout alone would allow.
    const { maxFailuresPerAddress, windowMinutes } = opts.config.console.signIn;
    await r.register(fastifyRateLimit, { global: false, max: maxFailuresPerAddress, timeWindow: windowMinutes * 60_000, keyGenerator: clientKey, store: failureStore(opts.now) });
    const failures = r.createRateLimit();

    routes.post("/console/api/session", { schema: { body: signInBody } }, async (request, reply) => {
      noStore(reply);
      const limited = await failures(request, { increment: false });
      if (!limited.isAllowed && limited.remaining === 0) {
        opts.log.warn({ remote: limited.key }, "console sign-in refused: too many failures from this address");
        return reply.code(429).header("retry-after", String(limited.ttlInSeconds)).send({ error: "rate_limited", message: `too many failed sign-ins; try again in ${limited.ttlInSeconds} s` });
      }
      // No session yet, so no CSRF token: the Origin check and SameSite=Strict keep other sites from signing a browser in.
      if (!originMatches(request.headers.origin, request.host)) return reply.code(403).send({ error: "origin" });
      const at = opts.now();
      const previous = sessionIdOf(app, request);
      if (previous !== undefined) {
        const old = await findSession(db, previous, at, limits);
        // Signing in again ends the session the browser had (an expired one is recorded as such).
        if (old.state === "live") await signOut(db, previous, old.account.username, at);
        else if (old.state === "expired" && old.ended) await recordExpiry(db, old.username, old.reason, at);
      }
      const result = await signIn(db, request.body, at, limits);
      if (!result.ok) {
        await failures(request);
        opts.log.info({ error: result.error }, "console sign-in refused");
        if (result.error === "locked") return reply.code(423).send({ error: "locked", until: result.until });
        if (result.error === "disabled") return reply.code(403).send({ error: "disabled" });
        return reply.code(401).send({ error: "bad_credentials" });
      }
      opts.log.info({ username: result.account.username }, "console sign-in");
      reply.setCookie(SESSION_COOKIE, result.sessionId, sessionCookieOptions(cookieIsSecure(request)));
      return { user: userBody(result.account), csrfToken: csrfTokenFor(result.sessionId) };
    });

    routes.get("/console/api/session", async (request, reply) => {
      const s = await authenticate(request, reply, undefined);
      if (!s) return reply;
      noStore(reply);
      return { user: userBody(s.user), csrfToken: csrfTokenFor(s.sessionId) };
    });

    routes.delete("/console/api/session", async (request, reply) => {
      const s = await authenticate(request, reply, undefined);
      if (!s) return reply;
      await signOut(db, s.sessionId, s.user.username, opts.now());
      opts.log.info({ username: s.user.username }, "console sign-out");
      clearCookie(request, reply);
      return reply.code(204).send();
    });
  });
};

// fastify's own marker (what fastify-plugin sets): registered without a context of its own, so the decorators
// reach the app that registered it.
Object.assign(consoleAuth, { [Symbol.for("skip-override")]: true, [Symbol.for("fastify.display-name")]: "anxin-console-auth" });

export const consoleAuthPlugin = consoleAuth;
