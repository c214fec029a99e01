// `anxin-relay households …` and `token add --street` as an admin at the relay host runs them: real child
// processes on a relay configuration whose SQLite store is in a temp folder. A home is registered, assessed
// from a YAML file, consented, approved, consent withdrawn (the camera retired); the register filtered by
// street and masked; bad input exits 2 naming the flag or the file, line and key; an unknown household exits
// 1; --json output is JSON on stdout alone; every step is in the audit log as the CLI's.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { verifyToken } from "../../relay/src/auth/tokens.js";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { loopDb } from "../../relay/src/store/closed-loop-schema.js";
import { openStore } from "../../relay/src/store/store.js";
import { HIGH, LOW } from "../support/households.js";

const CLI = path.resolve("relay/src/cli/main.ts");
const ACTOR = `cli:${os.userInfo().username}`;
const ELDER = "张秀英";
const ADDRESS = "长寿路12弄3号302室";
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function relayDir(): Promise<{ dir: string; config: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-households-cli-"));
  dirs.push(dir);
  const config = path.join(dir, "relay.yaml");
  // Ports are never opened: these commands work on the store alone.
  await writeFile(
    config,
    stringify({
      relay: { id: "cli-relay", dataDir: "./data" },
      store: { kind: "sqlite", path: "relay.db" },
      broker: { kind: "embedded", host: "127.0.0.1", port: 1 },
      http: { host: "127.0.0.1", port: 1 },
    }),
  );
  return { dir, config };
}

function cli(config: string, args: string[]): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  delete env.ANXIN_RELAY_CONFIG;
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args, "--config", config], { encoding: "utf8", env, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** Runs a --json command: exit 0 and nothing but one JSON document on stdout. */
function cliJson<T = Record<string, any>>(config: string, args: string[]): T {
  const r = cli(config, [...args, "--json"]);
  assert.equal(r.code, 0, `${args.join(" ")}: ${r.err}`);
  return JSON.parse(r.out) as T;
}

test("households CLI: create, assess from a file, consent, approve, withdraw, list by street; exit codes; audited as the CLI", async () => {
  const { dir, config } = await relayDir();
  const assessment = path.join(dir, "assessment.yaml");
  await writeFile(assessment, stringify(HIGH));

  // Register: the record comes back in full (the one who typed it in); one home per hub.
  const create = ["households", "create", "--hub", "hub-cli-1", "--elder-name", ELDER, "--address", ADDRESS, "--street", "长寿路街道", "--community", "一村"];
  const home = cliJson(config, create);
  assert.match(home.id, /^[0-9A-Z]{26}$/);
  assert.equal(home.elder.name, ELDER);
  assert.equal(home.owner, null);
  assert.equal(home.createdBy, ACTOR);
  let r = cli(config, create);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /hub hub-cli-1 already serves a household/);
  r = cli(config, ["households", "create", "--hub", "not a hub", "--elder-name", " ", "--address", "x", "--street", "s", "--community", "c"]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, /--hub: not a hub id/);
  assert.match(r.err, /--elder-name: /);
  r = cli(config, ["households", "create", "--hub", "hub-cli-9", "--elder-name", "x", "--address", "x", "--street", "s"]);
  assert.equal(r.code, 2, "a missing flag is bad input");
  assert.match(r.err, /--community/);

  // The assessment from a YAML file: scored, the plan derived and proposed; the camera withheld (no consent).
  const assessed = cliJson(config, ["households", "assess", home.id, "--file", assessment]);
  assert.equal(assessed.assessment.level, "high");
  assert.equal(assessed.assessment.by, ACTOR);
  assert.equal(assessed.plan.status, "proposed");
  assert.deepEqual(assessed.plan.withheld, [{ kind: "camera", room: "living", reason: "no consent recorded" }]);

  // A bad file: exit 2, the file with the line and key of every problem; nothing recorded.
  const bad = path.join(dir, "bad.yaml");
  await writeFile(bad, stringify({ ...HIGH, age: 200 }).replace("mobility: independent", "mobility: flying") + "pets: 2\n");
  r = cli(config, ["households", "assess", home.id, "--file", bad]);
  assert.equal(r.code, 2, r.err);
  const lines = stringify({ ...HIGH, age: 200 }).split("\n");
  const line = (key: string) => lines.findIndex((l) => l.startsWith(`${key}:`)) + 1;
  assert.ok(r.err.includes(`${bad}:${line("age")}: age: `), r.err);
  assert.ok(r.err.includes(`${bad}:${line("mobility")}: mobility: `), r.err);
  assert.match(r.err, /pets: unknown key 'pets'/);
  const badJson = path.join(dir, "bad.json");
  await writeFile(badJson, JSON.stringify({ ...LOW, rooms: [{ id: "Bed Room", kind: "bedroom" }] }, null, 2));
  r = cli(config, ["households", "assess", home.id, "--file", badJson]);
  assert.equal(r.code, 2, r.err);
  assert.match(r.err, new RegExp(`${badJson.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&")}:\\d+: rooms\\[0\\]\\.id: a room id`));
  r = cli(config, ["households", "assess", home.id, "--file", path.join(dir, "missing.yaml")]);
  assert.equal(r.code, 2);
  assert.match(r.err, /missing\.yaml: .*cannot read/);
  r = cli(config, ["households", "assess", "01NOSUCHHOUSEHOLD000000000", "--file", assessment]);
  assert.equal(r.code, 1, r.err);
  assert.match(r.err, /no household 01NOSUCHHOUSEHOLD000000000/);

  // Consent for the camera: it joins the plan. Bad flags: exit 2 naming them.
  r = cli(config, ["households", "consent", home.id, "--device", "camera", "--granted", "maybe", "--given-by", "elder"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--granted: "maybe" is not yes or no/);
  r = cli(config, ["households", "consent", home.id, "--device", "microwave", "--granted", "yes", "--given-by", "elder"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--device/);
  let consent = cliJson(config, ["households", "consent", home.id, "--device", "camera", "--granted", "yes", "--given-by", "elder"]);
  assert.deepEqual(consent.consent, { camera: true, vital_radar: false });
  assert.ok(consent.plan.items.some((i: { kind: string; retiredAt?: number }) => i.kind === "camera" && i.retiredAt === undefined));

  // Approval names who approved; the version answered is the one stored.
  r = cli(config, ["households", "approve", home.id]);
  assert.equal(r.code, 2, "--by is required");
  r = cli(config, ["households", "approve", home.id, "--by", "Li Wei", "--plan-version", "zero"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--plan-version: /);
  const before = cliJson(config, ["households", "plan", home.id]);
  r = cli(config, ["households", "approve", home.id, "--by", "Li Wei", "--plan-version", String(before.version - 1)]);
  assert.equal(r.code, 1, "not the version reviewed");
  assert.match(r.err, /the plan is at version/);
  const approved = cliJson(config, ["households", "approve", home.id, "--by", "Li Wei", "--plan-version", String(before.version)]);
  assert.equal(approved.status, "approved");
  assert.equal(approved.approvedBy, ACTOR);
  assert.equal(cliJson(config, ["households", "plan", home.id]).version, approved.version);

  // Withdrawal by the guardian retires the camera; the plan stays approved.
  consent = cliJson(config, ["households", "consent", home.id, "--device", "camera", "--granted", "no", "--given-by", "guardian"]);
  assert.deepEqual(consent.consent, { camera: false, vital_radar: false });
  const cams = consent.plan.items.filter((i: { kind: string }) => i.kind === "camera");
  assert.equal(cams.length, 1);
  assert.equal(cams[0].retiredReason, "consent withdrawn by the guardian");
  assert.equal(consent.plan.status, "approved");
  r = cli(config, ["households", "plan", home.id]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /camera\s+living\s+1\s+retired .*consent withdrawn by the guardian/);
  assert.match(r.out, /approved by /);

  // A second home on another street; the register by street, masked unless asked; --json is stdout only.
  const other = cliJson(config, ["households", "create", "--hub", "hub-cli-2", "--elder-name", "李四", "--address", "曹杨路8号", "--street", "曹杨新村街道", "--community", "三村"]);
  const listed = cliJson(config, ["households", "list", "--street", "长寿路街道"]);
  assert.equal(listed.masked, true);
  assert.deepEqual(
    listed.households.map((x: { id: string; elder: { name: string }; address: string; level: string; planStatus: string }) => [x.id, x.elder.name, x.address, x.level, x.planStatus]),
    [[home.id, "张**", "长寿路12弄*号***室", "high", "approved"]],
  );
  r = cli(config, ["households", "list"]);
  assert.equal(r.code, 0, r.err);
  assert.ok(r.out.includes(home.id) && r.out.includes(other.id));
  assert.ok(!r.out.includes(ELDER) && !r.out.includes(ADDRESS), "masked by default");
  const full = cliJson(config, ["households", "list", "--community", "三村", "--unmasked"]);
  assert.deepEqual(
    full.households.map((x: { id: string; elder: { name: string } }) => [x.id, x.elder.name]),
    [[other.id, "李四"]],
  );
  r = cli(config, ["households", "list", "--limit", "0"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--limit: /);
  const shown = cliJson(config, ["households", "show", home.id]);
  assert.equal(shown.household.elder.name, ELDER);
  assert.deepEqual(
    shown.consents.map((c: { device: string; granted: boolean; givenBy: string; recordedBy: string; recordedByToken: string | null }) => [c.device, c.granted, c.givenBy, c.recordedBy, c.recordedByToken]),
    [
      ["camera", true, "elder", ACTOR, null],
      ["camera", false, "guardian", ACTOR, null],
    ],
  );
  r = cli(config, ["households", "show", "01NOSUCHHOUSEHOLD000000000"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /no household 01NOSUCHHOUSEHOLD000000000/);

  // Tokens limited to streets: repeated --street; never for an admin.
  r = cli(config, ["token", "add", "--role", "installer", "--name", "ivan", "--street", "长寿路街道", "--street", "曹杨新村街道"]);
  assert.equal(r.code, 0, r.err);
  const token = r.out.trim();
  r = cli(config, ["token", "add", "--role", "admin", "--name", "ada", "--street", "长寿路街道"]);
  assert.equal(r.code, 2);
  assert.match(r.err, /--street: an admin token is not limited to streets/);
  r = cli(config, ["token", "list"]);
  assert.match(r.out, /ivan {2}installer {2}streets 长寿路街道, 曹杨新村街道/);

  // The audit log: every step under the home's hub, as the CLI's (actor and purpose).
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, path.join(dir, "data"), { migrations: relayExtraMigrations });
  try {
    const db = loopDb(store.db);
    assert.deepEqual((await verifyToken(db, token))?.streets, ["长寿路街道", "曹杨新村街道"]);
    const rows = await listAudit(db, { subject: "hub-cli-1" });
    const seen = rows.map((a) => `${a.actor} ${a.action}`);
    for (const want of ["household.create", "household.assess", "household.consent_granted", "household.approve", "household.consent_withdrawn", "household.read"]) {
      assert.ok(seen.includes(`${ACTOR} ${want}`), `${want} in ${seen.join(" | ")}`);
    }
    assert.ok(rows.every((a) => a.actor === ACTOR && a.purpose.startsWith("cli")), "every row is the CLI's");
    const approval = rows.find((a) => a.action === "household.approve");
    assert.match(approval!.purpose, new RegExp(`^cli; approved by Li Wei; household ${home.id}; plan v${approved.version}$`));
    assert.equal(rows.filter((a) => a.action === "household.assess").length, 1, "the bad files recorded nothing");
    const lists = (await listAudit(db, { subject: "*" })).filter((a) => a.action === "household.list");
    assert.ok(lists.some((a) => a.purpose === "cli; 1 household(s) by street"));
    assert.ok(lists.some((a) => a.purpose === "cli; unmasked; 1 household(s) by community"));
  } finally {
    await store.close();
  }
});
