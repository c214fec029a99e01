// What the peer benchmarks (disk-peer, broker-peer) share: package versions, the events the journal and relay
// benches use, the machine line, and cleanup that also runs when the script is stopped (run-all's SIGTERM).
import { readdirSync, readFileSync } from "node:fs";
import { loadavg } from "node:os";
import type { Envelope, EventDraft } from "../protocol/envelope.js";
import { signEnvelope } from "../protocol/signing.js";
import { machineInfo, r2 } from "./support.js";

/** The installed version of a dependency (from node_modules/<name>/package.json), or "?". */
export function packageVersion(name: string): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL(`../node_modules/${name}/package.json`, import.meta.url), "utf8")) as { version?: string };
    return pkg.version ?? "?";
  } catch {
    return "?";
  }
}

/** The mount that holds `path`: device, file system type, mount point (Linux; "?" elsewhere). */
export function mountOf(path: string): { device: string; fsType: string; mount: string } {
  let best = { device: "?", fsType: "?", mount: "?" };
  try {
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [device, mount, fsType] = line.split(" ");
      if (!device || !mount || !fsType) continue;
      const inside = path === mount || path.startsWith(mount.endsWith("/") ? mount : `${mount}/`);
      if (inside && (best.mount === "?" || mount.length >= best.mount.length)) best = { device, fsType, mount };
    }
  } catch {
    // not Linux
  }
  return best;
}

/** machineInfo() and its one-line description, as the other benches print it. */
export function describeMachine(): ReturnType<typeof machineInfo> & { loadEnd: number[] } {
  const m = { ...machineInfo(), loadEnd: [] as number[] };
  console.log(`machine: ${m.cpu} x${m.cores}, node ${m.node}, ${m.os}, ${m.memGiB} GiB RAM, load ${m.loadStart.join(" ")}`);
  return m;
}

export const loadNow = (): number[] => loadavg().map(r2);

/** The journal benches' event (journal, disk-peer): an alarm of about 300 bytes serialised, with its readings and actions. */
export function benchAlarmDraft(i: number): EventDraft {
  return {
    kind: "alarm",
    type: "gas",
    severity: "critical",
    device: "gas-kitchen-1",
    room: "kitchen",
    data: { lel: 23.5, setpoint: 20, i },
    actions: [{ action: "valve_closed", target: "valve-1", ok: true, at: 1_800_000_000_000 }],
  };
}

/**
 * The relay ingest bench's signed event (bench/relay-ingest.bench.ts, presign), serialised as sent; as a
 * reading (the bulk of what a hub drains after an outage, no incident work at the relay) when `kind` says so.
 */
export function signedBenchAlarm(hub: string, key: Buffer, seq: number, id: string, ts: number, kind: "alarm" | "reading" = "alarm"): Buffer {
  if (kind === "reading") {
    const r: Envelope = { v: 1, hub, boot: 3, seq, id, ts, kind: "reading", type: "gas", severity: "info", device: "gas-kitchen-1", data: { lel: 23.5, setpoint: 20, period: "1m" } };
    return Buffer.from(JSON.stringify(signEnvelope(r, key)));
  }
  const e: Envelope = {
    v: 1,
    hub,
    boot: 3,
    seq,
    id,
    ts,
    kind: "alarm",
    type: "gas",
    severity: "critical",
    device: "gas-kitchen-1",
    data: { lel: 23.5, setpoint: 20 },
    actions: [{ action: "valve_closed", target: "valve-1", ok: true }],
  };
  return Buffer.from(JSON.stringify(signEnvelope(e, key)));
}

type Cleanup = () => Promise<void> | void;
const cleanups: Cleanup[] = [];
let signalled = false;

/**
 * Registers `fn` to undo something the bench set up (a process, a temp dir, a schema). Returns a function that
 * runs it now, once, and unregisters it. On SIGINT/SIGTERM every registered cleanup runs, newest first, then
 * the process exits with 130/143.
 */
export function onCleanup(fn: Cleanup): () => Promise<void> {
  let done = false;
  const run = async (): Promise<void> => {
    if (done) return;
    done = true;
    const i = cleanups.indexOf(run);
    if (i >= 0) cleanups.splice(i, 1);
    await fn();
  };
  cleanups.push(run);
  if (cleanups.length === 1 && process.listenerCount("SIGTERM") === 0) {
    for (const sig of ["SIGINT", "SIGTERM"] as const) {
      process.once(sig, () => {
        if (signalled) return;
        signalled = true;
        process.stderr.write(`${sig}: cleaning up\n`);
        void (async () => {
          for (const c of [...cleanups].reverse()) {
            try {
              await c();
            } catch (err) {
              process.stderr.write(`cleanup failed: ${String(err)}\n`);
            }
          }
          process.exit(sig === "SIGINT" ? 130 : 143);
        })();
      });
    }
  }
  return run;
}

/** The pid of our child process whose command name is `comm` (e.g. the private mosquitto), or undefined. */
export function childPidByComm(comm: string): number | undefined {
  try {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      let stat: string;
      try {
        stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      } catch {
        continue;
      }
      const close = stat.lastIndexOf(")");
      if (stat.slice(stat.indexOf("(") + 1, close) !== comm) continue;
      if (Number(stat.slice(close + 2).split(" ")[1]) === process.pid) return Number(pid);
    }
  } catch {
    // not Linux
  }
  return undefined;
}
