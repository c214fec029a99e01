// Where hubs upload the camera stills of an alarm: POST /v1/stills, one JPEG per request, signed with the hub's
// own key (protocol/stills.ts), over HTTPS. Each upload is checked in this order, and refused with its own code:
// the transport (https_required), the claim's headers (bad_request), the hub and its signature (unknown_hub,
// bad_signature), its clock (stale, answered with the relay's clock), the bytes (bad_digest, not_jpeg,
// too_large), the home's recorded camera consent (no_consent), the alarm and its incident (unknown_event,
// not_alarm, no_incident), the stills per alarm (too_many) and the still's id (replay). This plugin also runs
// the retention sweep of the stills (stills.retentionHours), stopped when the HTTP side closes. docs/camera.md.
import { createHash } from "node:crypto";
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import type { Logger } from "pino";
import { looksLikeJpeg, STILL_HEADERS, STILL_MAX_SKEW_MS, STILLS_UPLOAD_PATH, stillClaimSchema, verifyStill, type StillClaim } from "../../../protocol/stills.js";
import { sendJson } from "../api/errors.js";
import { isLoopbackHost } from "../broker/plaintext.js";
import { recordAudit } from "../careplans/audit.js";
import type { RelayConfig } from "../config/schema.js";
import type { Registry } from "../registry/registry.js";
import type { LoopDb } from "../store/closed-loop-schema.js";
import type { Store } from "../store/store.js";
import { cameraConsented, countStillsOfEvent, HOUR_MS, incidentOfAlarm, insertStill } from "./repo.js";
import { startStillsSweep } from "./sweep.js";

export interface StillsUploadDeps {
  db: Kysely<LoopDb>;
  store: Store;
  registry: Pick<Registry, "usableSigningKey">;
  now: () => number;
  log: Logger;
  config: Pick<RelayConfig, "stills" | "store">;
}

type Refusal = { status: number; error: string; message: string; now?: number };
const refuse = (status: number, error: string, message: string): Refusal => ({ status, error, message });

/** The claim as the headers state it (bytes: the body's length), or why not. */
function claimOf(request: FastifyRequest, body: Buffer): StillClaim | Refusal {
  const h = (name: string) => {
    const v = request.headers[name];
    return typeof v === "string" ? v : undefined;
  };
  const num = (name: string) => {
    const v = h(name);
    return v !== undefined && /^\d{1,16}$/.test(v) ? Number(v) : NaN;
  };
  const parsed = stillClaimSchema.safeParse({
    hub: h(STILL_HEADERS.hub),
    event: h(STILL_HEADERS.event),
    still: h(STILL_HEADERS.still),
    index: num(STILL_HEADERS.index),
    takenAt: num(STILL_HEADERS.takenAt),
    ts: num(STILL_HEADERS.ts),
    sha256: h(STILL_HEADERS.sha256),
    bytes: body.length,
  });
  if (parsed.success) return parsed.data;
  const what = parsed.error.issues.map((i) => `${String(i.path[0] ?? "?")}: ${i.message}`).join("; ");
  return refuse(400, "bad_request", `the still's headers are incomplete or malformed (${what})`);
}

export function stillsUploadPlugin(d: StillsUploadDeps): FastifyPluginAsync {
  return async (app) => {
    const cfg = d.config.stills;
    const retentionMs = cfg.retentionHours * HOUR_MS;
    const sweep = startStillsSweep({ db: d.db, now: d.now, retentionMs, everyMs: cfg.sweepEveryS * 1000, log: d.log });
    app.addHook("onClose", async () => sweep.stop());

    // This context only: every body as bytes, up to the limit (fastify answers a longer one 413 too_large).
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: cfg.maxBytes }, (_req, body, done) => done(null, body));

    const answer = (reply: FastifyReply, r: Refusal) => sendJson(reply, r.status, { error: r.error, message: r.message, ...(r.now !== undefined ? { now: r.now } : {}) });

    async function check(request: FastifyRequest): Promise<Refusal | { claim: StillClaim; body: Buffer; incidentId: string }> {
      if (!cfg.enabled) return refuse(503, "stills_disabled", "this relay takes no camera stills (stills.enabled: false)");
      // Images of a home never cross a network in clear: TLS here or at a trusted proxy (X-Forwarded-Proto).
      if (request.protocol !== "https" && !isLoopbackHost(request.hostname)) return refuse(403, "https_required", "camera stills are taken over https only");
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const claim = claimOf(request, body);
      if ("error" in claim) return claim;
      const key = await d.registry.usableSigningKey(claim.hub);
      if (!key) return refuse(401, "unknown_hub", "no active hub by that id");
      const sig = request.headers[STILL_HEADERS.sig];
      if (typeof sig !== "string" || !verifyStill(claim, sig, key)) return refuse(401, "bad_signature", "the still's signature does not verify with the hub's key");
      const now = d.now();
      if (Math.abs(claim.ts - now) > STILL_MAX_SKEW_MS) return { ...refuse(401, "stale", `the upload is dated ${Math.round((claim.ts - now) / 1000)} s from the relay's clock (at most ${STILL_MAX_SKEW_MS / 1000} s); sign it again with the relay's clock`), now };
      if (createHash("sha256").update(body).digest("hex") !== claim.sha256) return refuse(400, "bad_digest", "the body's SHA-256 is not the one signed");
      const type = String(request.headers["content-type"] ?? "").split(";")[0]!.trim().toLowerCase();
      if (type !== "image/jpeg" || !looksLikeJpeg(body)) return refuse(415, "not_jpeg", "a still must be a JPEG image (content-type image/jpeg)");
      if (!(await cameraConsented(d.db, claim.hub))) return refuse(403, "no_consent", "no recorded consent of the elder to the camera for this home");
      const link = await incidentOfAlarm(d.db, claim.hub, claim.event);
      if (!link.ok) {
        if (link.code === "unknown_event") return refuse(404, "unknown_event", "the relay has not received that alarm (yet); try again later");
        return refuse(422, link.code, link.code === "not_alarm" ? "that event is not an alarm" : "that alarm belongs to no incident");
      }
      if ((await countStillsOfEvent(d.db, claim.event)) >= cfg.maxPerAlarm) return refuse(429, "too_many", `at most ${cfg.maxPerAlarm} stills per alarm`);
      return { claim, body, incidentId: link.incidentId };
    }

    app.post(STILLS_UPLOAD_PATH, { bodyLimit: cfg.maxBytes }, async (request, reply) => {
      const c = await check(request);
      if ("error" in c) {
        d.log.info({ error: c.error, hub: request.headers[STILL_HEADERS.hub] === undefined ? undefined : String(request.headers[STILL_HEADERS.hub]).slice(0, 64) }, "camera still refused");
        return answer(reply, c);
      }
      const at = d.now();
      const { claim, body, incidentId } = c;
      const stored = await d.db.transaction().execute(async (trx) => {
        const fresh = await insertStill(trx, { id: claim.still, hub: claim.hub, event_id: claim.event, incident_id: incidentId, idx: claim.index, taken_at: claim.takenAt, received_at: at, sha256: claim.sha256, size: body.length, data: body });
        if (fresh) await recordAudit(trx, { actor: `hub:${claim.hub}`, action: "stills.receive", subject: incidentId, purpose: `camera still ${claim.still} (${claim.index}) of alarm ${claim.event}`, at });
        return fresh;
      });
      if (!stored) return answer(reply, refuse(409, "replay", "this still was received already"));
      d.log.info({ hub: claim.hub, incident: incidentId, index: claim.index, bytes: body.length }, "camera still stored");
      return sendJson(reply, 201, { id: claim.still, incident: incidentId, expiresAt: at + retentionMs });
    });
  };
}
