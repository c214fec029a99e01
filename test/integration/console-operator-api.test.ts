// The operator API served again behind the console's sign-in (relay/src/console/operator/routes.ts), on a real
// relay over real HTTP: a signed-in operator reads and acts on incidents with the session cookie and the CSRF
// token, and is recorded by name; without the token, without a session, or in a role the API refuses, nothing
// happens. The bearer-token API is unchanged beside it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { getTimeline } from "../../relay/src/incidents/repo.js";
import { ConsoleClient } from "../support/console-client.js";
import { addAccount, alarm, CONSOLE_PASSWORD, incidentOf, provisionHub, startConsoleRelay } from "../support/console-rig.js";

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => {});
});

test("the operator API under /console/api: session and CSRF instead of a token, the person as the actor, the API's roles", async () => {
  const rig = await startConsoleRelay();
  cleanups.push(() => rig.stop());
  const { relay } = rig;
  await addAccount(relay, "wang", "王芳", "operator");
  await addAccount(relay, "zhao", "赵装", "installer");
  const h = await provisionHub(relay, "hub-console-api-1");
  await alarm(relay, h, "gas_leak", "critical");
  const inc = await incidentOf(relay, h.hub);

  const anon = new ConsoleClient(rig.httpUrl);
  assert.equal((await anon.request("GET", `/console/api/v1/incidents/${inc.id}`)).status, 401);

  const wang = new ConsoleClient(rig.httpUrl);
  assert.equal((await wang.signIn("wang", CONSOLE_PASSWORD)).status, 200);
  const detail = await wang.request("GET", `/console/api/v1/incidents/${inc.id}`);
  assert.equal(detail.status, 200);
  assert.equal(detail.body.incident.id, inc.id);
  assert.ok(Array.isArray(detail.body.timeline) && Array.isArray(detail.body.calls));

  // A change without the CSRF token is refused before it is read, and nothing changes.
  const forged = await wang.request("POST", `/console/api/v1/incidents/${inc.id}/confirm`, { body: {}, csrf: false });
  assert.equal(forged.status, 403);
  assert.equal(forged.body.error, "csrf");
  assert.notEqual((await incidentOf(relay, h.hub)).state, "confirmed");

  const confirmed = await wang.request("POST", `/console/api/v1/incidents/${inc.id}/confirm`, { body: { note: "smell of gas confirmed by phone" } });
  assert.equal(confirmed.status, 200, JSON.stringify(confirmed.body));
  const entry = (await getTimeline(relay.db, inc.id)).find((e) => e.kind === "transition" && e.to === "confirmed");
  assert.equal(entry?.actor, "user:wang");

  // The API's own refusals keep their shape: closing a confirmed emergency is a 409 with a code the page can translate.
  const again = await wang.request("POST", `/console/api/v1/incidents/${inc.id}/close`, { body: {} });
  assert.equal(again.status, 409);
  assert.match(again.body.error, /^[a-z_]+$/);

  const zhao = new ConsoleClient(rig.httpUrl);
  assert.equal((await zhao.signIn("zhao", CONSOLE_PASSWORD)).status, 200);
  const refused = await zhao.request("GET", `/console/api/v1/incidents/${inc.id}`);
  assert.equal(refused.status, 403);
  assert.equal(refused.body.error, "forbidden");
  assert.equal((await zhao.request("POST", `/console/api/v1/incidents/${inc.id}/close`, { body: {} })).status, 403);

  // The token API still answers only to tokens.
  assert.equal((await fetch(`${rig.httpUrl}/v1/incidents/${inc.id}`)).status, 401);
  const withCookie = await fetch(`${rig.httpUrl}/v1/incidents/${inc.id}`, { headers: { cookie: [...wang.jar].map(([k, v]) => `${k}=${v}`).join("; ") } });
  assert.equal(withCookie.status, 401);
});
