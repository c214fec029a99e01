// `anxin-relay operators …`: the console's named accounts, at the relay host. Like the other commands they
// open the store directly, and every change is in the audit log as the CLI's (`cli:<os user>`).
// Passwords are typed at the terminal (twice, not echoed) or given on stdin with --password-stdin.
import type { Command } from "commander";
import type { Kysely } from "kysely";
import { roleSchema, tokenStreetsSchema } from "../auth/tokens.js";
import { ConfigError, readRelayConfig } from "../config/loader.js";
import {
  AccountError,
  createAccount,
  disableAccount,
  enableAccount,
  foldUsername,
  getAccount,
  listAccounts,
  setPassword,
  unlockAccount,
  usernameProblem,
  type Account,
  type ChangeBy,
} from "../console/auth/accounts.js";
import { passwordProblem } from "../console/auth/password.js";
import { consoleAuthDb, type ConsoleAuthDb } from "../console/auth/tables.js";
import { relayExtraMigrations } from "../store/relay-migrations.js";
import { openStore } from "../store/store.js";
import { cliActor } from "./loop-commands.js";
import { PasswordInputError, readNewPassword } from "./password-prompt.js";

interface Helpers {
  withConfig(cmd: Command): Command;
  fail(message: string, code?: number): never;
}

const when = (ms: number | null | undefined) => (ms ? `${new Date(ms).toISOString().replace("T", " ").slice(0, 19)} UTC` : "-");

const by = (): ChangeBy => ({ actor: cliActor(), purpose: "cli", at: Date.now() });

/** What `operators list` shows as an account's state at `at`. */
export function accountState(a: Account, at: number): string {
  if (a.disabledAt !== null) return "disabled";
  if (a.lockedUntil !== null && a.lockedUntil > at) return `locked until ${when(a.lockedUntil)}`;
  return "active";
}

export function registerOperatorCommands(program: Command, h: Helpers): void {
  /** The store with the console's tables (and every table the daemon has). */
  async function withStore<T>(configFile: string, f: (db: Kysely<ConsoleAuthDb>) => Promise<T>): Promise<T> {
    let config;
    try {
      config = (await readRelayConfig(configFile)).config;
    } catch (e) {
      h.fail((e as Error).message, e instanceof ConfigError ? 2 : 1);
    }
    const store = await openStore(config.store, config.relay.dataDir, { migrations: relayExtraMigrations }).catch((e: Error) => h.fail(e.message));
    try {
      return await f(consoleAuthDb(store.db));
    } catch (e) {
      if (e instanceof AccountError) h.fail(e.message, e.code === "bad_input" ? 2 : 1);
      if (e instanceof PasswordInputError) h.fail(e.message, 2);
      throw e;
    } finally {
      await store.close().catch(() => {});
    }
  }

  const username = (raw: string): string => {
    const u = foldUsername(raw);
    const bad = usernameProblem(u);
    if (bad) h.fail(`'${raw}': ${bad}`, 2);
    return u;
  };

  // Commander's own input errors (a missing flag, an unknown option) are bad input too: exit 2, not 1.
  const operators = program
    .command("operators")
    .description("the web console's named accounts: add, list, new password, disable, enable, unlock")
    .exitOverride((e) => process.exit(e.exitCode === 0 ? 0 : 2));

  h.withConfig(operators.command("add"))
    .description("create an account; its password is asked twice at the terminal (or read from stdin with --password-stdin)")
    .argument("<username>", "2 to 32 of a-z 0-9 . _ - (case does not matter)")
    .requiredOption("--role <role>", "operator, admin or installer")
    .requiredOption("--name <name>", "the person's name, as the console shows it")
    .option("--street <street>", "limit an operator or installer to this street (街道); repeat for more", (v: string, acc: string[] = []) => [...acc, v])
    .option("--password-stdin", "read the password from stdin (one line) instead of asking")
    .action(async (raw: string, opts: { config: string; role: string; name: string; street?: string[]; passwordStdin?: boolean }) => {
      const u = username(raw);
      const role = roleSchema.safeParse(opts.role);
      if (!role.success) h.fail("--role must be operator, admin or installer", 2);
      const streets = opts.street === undefined ? undefined : tokenStreetsSchema.safeParse(opts.street);
      if (streets && !streets.success) h.fail(`--street: ${streets.error.issues.map((i) => i.message).join("; ")}`, 2);
      if (streets && role.data === "admin") h.fail("--street: an admin account is not limited to streets; make it an operator or installer account", 2);
      if (!opts.name.trim()) h.fail("--name: the person's name, not empty", 2);
      await withStore(opts.config, async (db) => {
        // Before the password is typed twice for nothing.
        if (await getAccount(db, u)) h.fail(`an account named "${u}" exists already`);
        const password = await readNewPassword(opts.passwordStdin === true, (p) => passwordProblem(p, u));
        const a = await createAccount(db, { username: u, displayName: opts.name, role: role.data, streets: streets?.data, password }, by());
        process.stdout.write(`account ${a.username} (${a.displayName}, ${a.role}${a.streets ? `, streets ${a.streets.join(", ")}` : ""}) created\n`);
      });
    });

  h.withConfig(operators.command("list"))
    .description("every account: username, name, role, streets, state, last sign-in")
    .option("--json", "machine-readable")
    .action(async (opts: { config: string; json?: boolean }) => {
      await withStore(opts.config, async (db) => {
        const rows = await listAccounts(db);
        const at = Date.now();
        if (opts.json) return void process.stdout.write(`${JSON.stringify(rows.map((a) => ({ ...a, state: accountState(a, at).split(" ")[0] })), null, 2)}\n`);
        if (!rows.length) return void process.stdout.write("no accounts\n");
        const table = [
          ["USERNAME", "NAME", "ROLE", "STREETS", "STATE", "LAST SIGN-IN", "CREATED"],
          ...rows.map((a) => [a.username, a.displayName, a.role, a.streets ? a.streets.join(", ") : "all", accountState(a, at), when(a.lastLoginAt), when(a.createdAt)]),
        ];
        const widths = table[0]!.map((_, i) => Math.max(...table.map((r) => r[i]!.length)));
        process.stdout.write(table.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n");
      });
    });

  h.withConfig(operators.command("passwd"))
    .description("set a new password (asked twice, or --password-stdin); the account's sessions end")
    .argument("<username>")
    .option("--password-stdin", "read the password from stdin (one line) instead of asking")
    .action(async (raw: string, opts: { config: string; passwordStdin?: boolean }) => {
      const u = username(raw);
      await withStore(opts.config, async (db) => {
        if (!(await getAccount(db, u))) h.fail(`no account named "${u}"`);
        const password = await readNewPassword(opts.passwordStdin === true, (p) => passwordProblem(p, u));
        await setPassword(db, u, password, by());
        process.stdout.write(`new password for ${u}; its console sessions have ended\n`);
      });
    });

  const simple = (name: string, description: string, change: (db: Kysely<ConsoleAuthDb>, u: string, b: ChangeBy) => Promise<void>, done: string) =>
    h
      .withConfig(operators.command(name))
      .description(description)
      .argument("<username>")
      .action(async (raw: string, opts: { config: string }) => {
        const u = username(raw);
        await withStore(opts.config, async (db) => {
          await change(db, u, by());
          process.stdout.write(`${u}: ${done}\n`);
        });
      });

  simple("disable", "stop an account from signing in; its sessions end at once", disableAccount, "disabled; its console sessions have ended");
  simple("enable", "let a disabled account sign in again", enableAccount, "enabled");
  simple("unlock", "lift a lockout after too many wrong passwords", unlockAccount, "unlocked");
}
