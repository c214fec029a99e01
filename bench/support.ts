// What every benchmark shares: rounding, nearest-rank percentiles and a description of the machine,
// so figures from different scripts are computed and labelled the same way.
import { randomBytes } from "node:crypto";
import { closeSync, fdatasyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { cpus, loadavg, platform, release, totalmem } from "node:os";
import { join } from "node:path";
import type { ChildProcess } from "node:child_process";
import type { IClientOptions } from "mqtt";
import { topics } from "../protocol/topics.js";
import { CONNECT_TIMEOUT_MS } from "../gateway/src/uplink/uplink.js";
import { carePlanSchema } from "../relay/src/careplans/schema.js";
import { hashPassword } from "../relay/src/registry/secrets.js";
import { loopDb } from "../relay/src/store/closed-loop-schema.js";
import type { Store } from "../relay/src/store/store.js";

// Benchmarks on PostgreSQL use the tests' helpers: a schema of their own, dropped at the end.
export { dropPgSchema, uniquePgSchema } from "../test/support/pg.js";

export const r2 = (x: number): number => Math.round(x * 100) / 100;

/** Nearest-rank percentile of an ascending array; NaN when empty. */
export function pct(sorted: ArrayLike<number>, p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

export function machineInfo() {
  const cpu = cpus();
  return {
    cpu: cpu[0]?.model ?? "?",
    cores: cpu.length,
    node: process.version,
    os: `${platform()} ${release()}`,
    memGiB: r2(totalmem() / 2 ** 30),
    loadStart: loadavg().map(r2),
  };
}

/** The disk's own limit for context: 4 KiB write + fdatasync, `rounds` times, in `dir`. */
export function rawFdatasync(dir: string, rounds: number): { p50: number; p99: number; mean: number; perSec: number } {
  const fd = openSync(join(dir, "fsync.bin"), "w");
  const block = Buffer.alloc(4096, 7);
  const lat: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      const t0 = performance.now();
      writeSync(fd, block, 0, block.length, (i % 16) * 4096);
      fdatasyncSync(fd);
      lat.push(performance.now() - t0);
    }
  } finally {
    closeSync(fd);
  }
  lat.sort((a, b) => a - b);
  const mean = lat.reduce((a, b) => a + b, 0) / lat.length;
  return { p50: r2(pct(lat, 50)), p99: r2(pct(lat, 99)), mean: r2(mean), perSec: Math.round(1000 / mean) };
}

export interface BenchHub {
  hub: string;
  password: string;
  key: string;
}

/**
 * Bench-only: hub rows as an enrolment leaves them, written directly, with the password hash an enrolment
 * stores today (relay/src/registry/secrets.ts), so logins go through the relay's own check at its real
 * cost. 500 per transaction.
 */
export async function insertBenchHubs(store: Store, hubs: string[]): Promise<BenchHub[]> {
  const out: BenchHub[] = [];
  for (let i = 0; i < hubs.length; i += 500) {
    const part = hubs.slice(i, i + 500).map((hub) => {
      const password = randomBytes(24).toString("base64url");
      const salt = randomBytes(16);
      return { hub, password, key: randomBytes(32).toString("base64"), salt: salt.toString("base64"), hash: hashPassword(password, salt) };
    });
    const now = Date.now();
    await store.db.transaction().execute((trx) =>
      trx
        .insertInto("hubs")
        .values(
          part.map((b) => ({
            id: b.hub,
            status: "active" as const,
            password_hash: b.hash,
            password_salt: b.salt,
            key_b64: b.key,
            claim_hash: "bench",
            claim_salt: "bench",
            claim_expires_at: now + 3_600_000,
            claim_used_at: now,
            created_at: now,
            last_seen_at: null,
            online: 0,
            last_boot: null,
            offline_since: null,
          })),
        )
        .execute(),
    );
    for (const b of part) out.push({ hub: b.hub, password: b.password, key: b.key });
  }
  return out;
}

/**
 * The same small care plan (an elder, a contact, the neighbourhood committee, an on-site team) for every hub:
 * the call tree then starts by calling the elder and waits for an answer, as in a real home.
 */
export async function insertBenchCarePlans(store: Store, hubs: string[]): Promise<void> {
  const plan = JSON.stringify(
    carePlanSchema.parse({
      elder: { name: "Bench Elder", phone: "+8613800000000", address: "Bench Road 1" },
      contacts: [
        { id: "c1", name: "Contact", phone: "+8613800000001", role: "emergency_contact" },
        { id: "n1", name: "Committee", phone: "+8613800000004", role: "neighbourhood_committee" },
      ],
      onsiteTeam: { name: "Team", phone: "+8613800000009" },
    }),
  );
  const db = loopDb(store.db);
  for (let i = 0; i < hubs.length; i += 200)
    await db
      .insertInto("care_plans")
      .values(hubs.slice(i, i + 200).map((hub) => ({ hub, plan, version: 1, updated_at: Date.now(), updated_by: "bench" })))
      .execute();
}

/**
 * A bench hub's MQTT connection as the uplink makes it: its own credentials, a clean session, no reconnect
 * (a lost hub is a finding), and the retained "offline" will of boot `boot`.
 */
export function benchHubConnectOptions(h: { hub: string; password: string }, boot: number): IClientOptions {
  return {
    clientId: h.hub,
    username: h.hub,
    password: h.password,
    clean: true,
    keepalive: 30,
    reconnectPeriod: 0,
    connectTimeout: CONNECT_TIMEOUT_MS,
    protocolVersion: 4,
    will: { topic: topics.state(h.hub), payload: Buffer.from(JSON.stringify({ online: false, boot, ts: Date.now() })), qos: 1, retain: true },
  };
}

/** Sends `m` to a hub process and waits for its answer of type `t` (the benches' parent ↔ child exchange). */
export function askChild<T extends { t: string }>(proc: ChildProcess, m: unknown, t: T["t"], timeoutMs: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`hub process: no '${t}' after ${timeoutMs} ms`)), timeoutMs);
    const on = (x: { t: string }) => {
      if (x.t !== t) return;
      clearTimeout(timer);
      proc.off("message", on);
      resolve(x as T);
    };
    proc.on("message", on);
    proc.send(m as object);
  });
}

/** The soft limit on open files (each hub connection is one), from /proc; NaN when it cannot be read. */
export function nofileLimit(): number {
  try {
    const line = readFileSync("/proc/self/limits", "utf8")
      .split("\n")
      .find((l) => l.startsWith("Max open files"));
    const soft = line?.split(/\s{2,}/)[1];
    return soft === "unlimited" ? Infinity : Number(soft);
  } catch {
    return NaN;
  }
}
