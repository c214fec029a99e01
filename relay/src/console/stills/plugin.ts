// The console's camera stills of an incident, under /console/api, behind app.consoleUser:
//   GET /console/api/incidents/:id/stills           the list (no image data)
//   GET /console/api/incidents/:id/stills/:still    one JPEG
// Only for the people working that incident: the operator who has it taken now (console_incident_takes), or an
// admin. Anyone else on duty is answered 403 `not_taken`; an incident outside the account's streets, or
// unknown, 404. Every list and every image served is first written to the audit log (`stills.list`,
// `stills.view`, actor user:<name>): a read that cannot be recorded is not served. Never cached. docs/camera.md.
import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Kysely } from "kysely";
import { recordAudit } from "../../careplans/audit.js";
import type { HouseholdTables } from "../../households/tables.js";
import { inStreetScope } from "../../households/street-scope.js";
import { getStill, HOUR_MS, listStills } from "../../stills/repo.js";
import type { ConsolePageDeps } from "../page-deps.js";
import type { QueueDb } from "../queue/table.js";
import { consoleUserOf, type ConsoleUser } from "../queue/user.js";

const ID = /^[0-9A-Za-z]{1,64}$/;

type Access = "ok" | "not_found" | "not_taken";

export const consoleStillsPlugin: FastifyPluginAsync<ConsolePageDeps> = async (app, d) => {
  const retentionMs = d.config.stills.retentionHours * HOUR_MS;
  const staff = app.consoleUser(["operator", "admin"]);
  const db = d.db as unknown as Kysely<QueueDb & HouseholdTables>;

  /** Whether `user` works incident `id`: its current taker, or an admin (within their streets). */
  async function access(user: ConsoleUser, id: string): Promise<Access> {
    if (!ID.test(id)) return "not_found";
    const inc = await db.selectFrom("incidents as i").leftJoin("households as h", "h.hub", "i.hub").select(["i.id", "h.street"]).where("i.id", "=", id).executeTakeFirst();
    if (!inc || !inStreetScope(user.streets, inc.street ?? undefined)) return "not_found";
    if (user.role === "admin") return "ok";
    const take = await db.selectFrom("console_incident_takes").select("user_id").where("current_key", "=", id).executeTakeFirst();
    return take?.user_id === user.id ? "ok" : "not_taken";
  }

  const refuse = (reply: FastifyReply, a: Exclude<Access, "ok">) =>
    reply
      .code(a === "not_found" ? 404 : 403)
      .header("cache-control", "no-store")
      .send(a === "not_found" ? { error: "not_found", message: "no such incident" } : { error: "not_taken", message: "only the operator who has taken this incident, or an admin, sees its camera stills" });

  app.get<{ Params: { id: string } }>("/console/api/incidents/:id/stills", { preHandler: staff }, async (req: FastifyRequest<{ Params: { id: string } }>, reply) => {
    const user = consoleUserOf(req);
    const a = await access(user, req.params.id);
    if (a !== "ok") return refuse(reply, a);
    const at = d.now();
    const stills = await listStills(d.db, req.params.id, at, retentionMs);
    await recordAudit(d.db, { actor: user.actor, action: "stills.list", subject: req.params.id, purpose: `console: ${stills.length} camera still(s) listed`, at });
    return reply.header("cache-control", "no-store").send({ stills, retentionHours: d.config.stills.retentionHours });
  });

  app.get<{ Params: { id: string; still: string } }>("/console/api/incidents/:id/stills/:still", { preHandler: staff }, async (req, reply) => {
    const user = consoleUserOf(req);
    const { id, still } = req.params;
    const a = await access(user, id);
    if (a !== "ok") return refuse(reply, a);
    const at = d.now();
    const got = ID.test(still) ? await getStill(d.db, id, still, at, retentionMs) : undefined;
    if (!got) return reply.code(404).header("cache-control", "no-store").send({ error: "not_found", message: "no such still (or past its retention)" });
    // Recorded before it is served: a view that cannot be recorded is not shown.
    await recordAudit(d.db, { actor: user.actor, action: "stills.view", subject: id, purpose: `console: camera still ${still} (${got.meta.index}) of hub ${got.hub}`, at });
    d.log.info({ incident: id, still, actor: user.actor }, "console: camera still viewed");
    return reply
      .header("cache-control", "no-store")
      .header("x-content-type-options", "nosniff")
      .header("cross-origin-resource-policy", "same-origin")
      .header("content-disposition", `inline; filename="still-${still}.jpg"`)
      .type("image/jpeg")
      .send(got.data);
  });
};
