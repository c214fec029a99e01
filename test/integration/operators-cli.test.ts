// `anxin-relay operators …` as an admin at the relay host runs them: real child processes on a relay
// configuration whose SQLite store is in a temp folder. Accounts added with --password-stdin (and on a real
// terminal, typed twice without echo), listed as a table and as JSON, a new password, disable / enable, and
// unlock after a lockout the sign-in itself caused; bad input exits 2 with the reason, an unknown account 1;
// every change is in the audit log as the CLI's, and no password is anywhere in it.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { stringify } from "yaml";
import { listAudit } from "../../relay/src/careplans/audit.js";
import { getAccount, LOCKOUT } from "../../relay/src/console/auth/accounts.js";
import { sessionLimits } from "../../relay/src/console/auth/sessions.js";
import { signIn } from "../../relay/src/console/auth/sign-in.js";
import { auditDb, consoleAuthDb, consoleAuthMigrations, type ConsoleAuthDb } from "../../relay/src/console/auth/tables.js";
import { relayExtraMigrations } from "../../relay/src/store/relay-migrations.js";
import { openStore } from "../../relay/src/store/store.js";
import type { Kysely } from "kysely";
import { runOnPty } from "../support/pty-run.js";

const CLI = path.resolve("relay/src/cli/main.ts");
const ACTOR = `cli:${os.userInfo().username}`;
const LIMITS = sessionLimits({ session: { idleMinutes: 30, maxHours: 12 } });
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

async function relayDir(): Promise<{ dir: string; config: string }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-operators-cli-"));
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

function cli(config: string, args: string[], input?: string): { code: number | null; out: string; err: string } {
  const env = { ...process.env };
  delete env.ANXIN_RELAY_CONFIG;
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, ...args, "--config", config], { encoding: "utf8", env, timeout: 60_000, input: input ?? "" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** The same store, in this process, for a moment. */
async function withDb<T>(dir: string, f: (db: Kysely<ConsoleAuthDb>) => Promise<T>): Promise<T> {
  const store = await openStore({ kind: "sqlite", path: "relay.db" }, path.join(dir, "data"), { migrations: { ...relayExtraMigrations, ...consoleAuthMigrations } });
  try {
    return await f(consoleAuthDb(store.db));
  } finally {
    await store.close();
  }
}

test("operators CLI: add, list, passwd, disable, enable, unlock; exit codes; audited as the CLI", async () => {
  const { dir, config } = await relayDir();
  const PW = "correct horse battery";

  let r = cli(config, ["operators", "add", "Alice", "--role", "operator", "--name", "李丽", "--street", "长寿路街道", "--password-stdin"], `${PW}\n`);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /account alice \(李丽, operator, streets 长寿路街道\) created/);
  r = cli(config, ["operators", "add", "bob", "--role", "admin", "--name", "Bob Wang", "--password-stdin"], "admin staple 2026!\r\n");
  assert.equal(r.code, 0, r.err);

  // Bad input: 2, with the reason.
  const bad: Array<[string[], string | undefined, RegExp]> = [
    [["operators", "add", "a b", "--role", "operator", "--name", "X", "--password-stdin"], PW, /'a b': a username is 2 to 32 of a-z 0-9 \. _ -/],
    [["operators", "add", "carol", "--role", "boss", "--name", "X", "--password-stdin"], PW, /--role must be operator, admin or installer/],
    [["operators", "add", "carol", "--role", "admin", "--name", "X", "--street", "长寿路街道", "--password-stdin"], PW, /--street: an admin account is not limited to streets/],
    [["operators", "add", "carol", "--role", "operator", "--name", " ", "--password-stdin"], PW, /--name/],
    [["operators", "add", "carol", "--role", "operator", "--name", "Carol", "--password-stdin"], "short\n", /at least 12 characters long \(this one has 5\)/],
    [["operators", "add", "carolcarol12", "--role", "operator", "--name", "Carol", "--password-stdin"], "CarolCarol12\n", /must not be the username/],
    [["operators", "add", "carol", "--role", "operator", "--name", "Carol", "--password-stdin"], "first line is long\nsecond line\n", /one line/],
    [["operators", "add", "carol", "--role", "operator", "--name", "Carol"], undefined, /no terminal to ask for the password on: give it on stdin with --password-stdin/],
    [["operators", "add", "carol", "--name", "Carol", "--password-stdin"], PW, /--role/],
  ];
  for (const [args, input, message] of bad) {
    r = cli(config, args, input);
    assert.equal(r.code, 2, `${args.join(" ")}: ${r.err}`);
    assert.match(r.err, message, args.join(" "));
  }
  r = cli(config, ["operators", "add", "ALICE", "--role", "operator", "--name", "Again", "--password-stdin"], PW);
  assert.equal(r.code, 1);
  assert.match(r.err, /an account named "alice" exists already/);
  for (const cmd of ["disable", "passwd"]) {
    r = cli(config, ["operators", cmd, "nobody", ...(cmd === "passwd" ? ["--password-stdin"] : [])], PW);
    assert.equal(r.code, 1, `${cmd}: ${r.err}`);
    assert.match(r.err, /no account named "nobody"/);
  }

  // The list: a table, and JSON with no hash in it.
  r = cli(config, ["operators", "list"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /^USERNAME\s+NAME\s+ROLE\s+STREETS\s+STATE/);
  assert.match(r.out, /alice\s+李丽\s+operator\s+长寿路街道\s+active/);
  assert.match(r.out, /bob\s+Bob Wang\s+admin\s+all\s+active/);
  r = cli(config, ["operators", "list", "--json"]);
  assert.equal(r.code, 0, r.err);
  const list = JSON.parse(r.out) as Array<Record<string, unknown>>;
  assert.deepEqual(
    list.map((a) => [a.username, a.displayName, a.role, a.streets ?? null, a.state]),
    [
      ["alice", "李丽", "operator", ["长寿路街道"], "active"],
      ["bob", "Bob Wang", "admin", null, "active"],
    ],
  );
  assert.ok(!/hash|argon/i.test(r.out), "no password hash in the listing");

  // A lockout from wrong passwords at the sign-in; the CLI lifts it.
  await withDb(dir, async (db) => {
    for (let i = 0; i < LOCKOUT.failures; i++) await signIn(db, { username: "alice", password: `wrong ${i} wrong wrong` }, Date.now(), LIMITS);
    assert.equal((await signIn(db, { username: "alice", password: PW }, Date.now(), LIMITS)).ok, false);
  });
  r = cli(config, ["operators", "list"]);
  assert.match(r.out, /alice .* locked until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC/);
  assert.equal(JSON.parse(cli(config, ["operators", "list", "--json"]).out)[0].state, "locked");
  r = cli(config, ["operators", "unlock", "alice"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /alice: unlocked/);
  await withDb(dir, async (db) => {
    const s = await signIn(db, { username: "alice", password: PW }, Date.now(), LIMITS);
    assert.equal(s.ok, true);
    assert.equal((await db.selectFrom("console_sessions").selectAll().execute()).length, 1);
  });

  // A new password ends the sessions; the old one no longer works.
  const PW2 = "a different passphrase";
  r = cli(config, ["operators", "passwd", "alice", "--password-stdin"], `${PW2}\n`);
  assert.equal(r.code, 0, r.err);
  await withDb(dir, async (db) => {
    assert.equal((await db.selectFrom("console_sessions").selectAll().execute()).length, 0);
    assert.equal((await signIn(db, { username: "alice", password: PW }, Date.now(), LIMITS)).ok, false);
    assert.equal((await signIn(db, { username: "alice", password: PW2 }, Date.now(), LIMITS)).ok, true);
  });

  // Disable: refused at the sign-in and its sessions gone; enable again.
  r = cli(config, ["operators", "disable", "alice"]);
  assert.equal(r.code, 0, r.err);
  assert.equal(JSON.parse(cli(config, ["operators", "list", "--json"]).out)[0].state, "disabled");
  await withDb(dir, async (db) => {
    assert.equal((await db.selectFrom("console_sessions").selectAll().execute()).length, 0);
    const s = await signIn(db, { username: "alice", password: PW2 }, Date.now(), LIMITS);
    assert.deepEqual(s, { ok: false, error: "disabled" });
  });
  r = cli(config, ["operators", "enable", "alice"]);
  assert.equal(r.code, 0, r.err);
  await withDb(dir, async (db) => {
    assert.equal((await getAccount(db, "alice"))!.disabledAt, null);
    const audit = await listAudit(auditDb(db), { subject: "user:alice" });
    const byCli = audit.filter((e) => e.actor === ACTOR).map((e) => e.action);
    assert.deepEqual(byCli, ["console.account_add", "console.account_unlock", "console.account_passwd", "console.account_disable", "console.account_enable"]);
    const text = JSON.stringify(await listAudit(auditDb(db), { limit: 10_000 }));
    for (const p of [PW, PW2]) assert.ok(!text.includes(p), "no password in the audit log");
  });
});

test("operators CLI on a terminal: the password is asked twice and never echoed", async () => {
  const { dir, config } = await relayDir();
  const env = { ...process.env };
  delete env.ANXIN_RELAY_CONFIG;
  const PW = "typed at the terminal 1";

  const pty = runOnPty(process.execPath, ["--import", "tsx", CLI, "operators", "add", "dana", "--role", "installer", "--name", "Dana", "--config", config], { env });
  await pty.waitFor("the first prompt", (o) => o.includes("New password: "));
  // A typo taken back with Backspace.
  pty.type(`${PW}x\u007f\r`);
  await pty.waitFor("the second prompt", (o) => o.includes("Same password again: "));
  pty.type(`${PW}\r`);
  const done = await pty.exited;
  assert.equal(done.code, 0, done.output);
  assert.match(done.output, /account dana \(Dana, installer\) created/);
  assert.ok(!done.output.includes(PW) && !done.output.includes("typed"), `the password is not echoed:\n${done.output}`);
  await withDb(dir, async (db) => assert.equal((await signIn(db, { username: "dana", password: PW }, Date.now(), LIMITS)).ok, true));

  const again = runOnPty(process.execPath, ["--import", "tsx", CLI, "operators", "passwd", "dana", "--config", config], { env });
  await again.waitFor("the first prompt", (o) => o.includes("New password: "));
  again.type("one long new password\r");
  await again.waitFor("the second prompt", (o) => o.includes("Same password again: "));
  again.type("another long password\r");
  const differ = await again.exited;
  assert.equal(differ.code, 2, differ.output);
  assert.match(differ.output, /the two passwords differ; nothing changed/);
  await withDb(dir, async (db) => assert.equal((await signIn(db, { username: "dana", password: PW }, Date.now(), LIMITS)).ok, true, "unchanged"));
});
