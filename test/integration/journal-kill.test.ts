import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import Database from "better-sqlite3";
import { Journal } from "../../gateway/src/journal/journal.js";

const WRITER = fileURLToPath(new URL("../support/journal-writer.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../", import.meta.url));

interface Round {
  boot: number;
  ids: string[];
}

/** Runs the writer until `killAfter` ids were printed, SIGKILLs it, and returns every complete line it printed. */
function burstAndKill(path: string, killAfter: number): Promise<Round> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", WRITER, path], {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let buf = "";
    let boot = 0;
    const ids: string[] = [];
    let stderr = "";
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`writer did not reach ${killAfter} commits in time; stderr: ${stderr}`));
    }, 30_000);
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.stdout.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.startsWith("boot ")) boot = Number(line.slice(5));
        else ids.push(line);
      }
      if (ids.length >= killAfter && child.exitCode === null && !child.killed) child.kill("SIGKILL");
    });
    // 'close' comes after stdout is drained, so ids printed just before the kill are counted too.
    child.on("close", (_code, signal) => {
      clearTimeout(timer);
      if (signal !== "SIGKILL") reject(new Error(`writer ended without being killed (${signal}); stderr: ${stderr}`));
      else resolve({ boot, ids });
    });
  });
}

test("SIGKILL mid-burst loses no committed event", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "anxin-journal-kill-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const path = join(dir, "journal.db");

  for (const killAfter of [150, 400, 900]) {
    const round = await burstAndKill(path, killAfter);
    assert.ok(round.ids.length >= killAfter, `round printed ${round.ids.length} ids`);
    assert.ok(round.boot >= 1);

    const db = new Database(path);
    try {
      assert.equal(db.pragma("integrity_check", { simple: true }), "ok");
      const has = db.prepare("SELECT 1 FROM events WHERE event_id = ?").pluck();
      const missing = round.ids.filter((id) => has.get(id) === undefined);
      assert.deepEqual(missing, [], `${missing.length} of ${round.ids.length} printed ids missing after SIGKILL`);
      const rows = db.prepare("SELECT count(*) FROM events WHERE boot = ?").pluck().get(round.boot) as number;
      assert.ok(rows >= round.ids.length);
      t.diagnostic(`kill after ${killAfter}: printed ${round.ids.length}, committed ${rows} in boot ${round.boot}`);
    } finally {
      db.close();
    }

    const j = await Journal.open({ path, hub: "kill-test" });
    assert.equal(j.boot, round.boot + 1, "boot counter moved on");
    await j.close();
  }
});
