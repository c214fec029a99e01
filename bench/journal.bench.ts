// Journal benchmark: durable commit rates (WAL, synchronous=FULL) and the ack drain rate, with the disk's
// raw fdatasync latency for context. Run: node --import tsx bench/journal.bench.ts  (BENCH_DIR picks the disk)
import { mkdtempSync, readFileSync, rmSync, statfsSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import { Journal } from "../gateway/src/journal/journal.js";
import { machineInfo, pct, r2, rawFdatasync } from "./support.js";
import { benchAlarmDraft } from "./peer-support.js";

const baseDir = process.env.BENCH_DIR ?? tmpdir();
const dir = mkdtempSync(join(baseDir, "anxin-journal-bench-"));
let dbNo = 0;
const freshPath = (): string => join(dir, `j${++dbNo}.db`);

function diskInfo(path: string): { mount: string; fsType: string; device: string; rotational: string; freeGiB: number } {
  let mount = "?";
  let fsType = "?";
  let device = "?";
  try {
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [dev, mnt, type] = line.split(" ");
      if (!dev || !mnt || !type) continue;
      if ((path === mnt || path.startsWith(mnt.endsWith("/") ? mnt : `${mnt}/`)) && mnt.length >= (mount === "?" ? 0 : mount.length)) {
        mount = mnt;
        fsType = type;
        device = dev;
      }
    }
  } catch {
    // not Linux
  }
  let rotational = "unknown";
  try {
    const blk = basename(device).replace(/p?\d+$/, "");
    const flag = readFileSync(`/sys/block/${blk}/queue/rotational`, "utf8").trim();
    // Virtual disks often report 1 whatever backs them, so the raw flag is shown as well.
    rotational = flag === "1" ? "rotational=1 (HDD, or a virtual disk)" : "rotational=0 (SSD/flash)";
  } catch {
    // unknown device
  }
  const st = statfsSync(path);
  return { mount, fsType, device, rotational, freeGiB: r2((st.bavail * st.bsize) / 2 ** 30) };
}


interface Rate {
  events: number;
  seconds: number;
  perSec: number;
  p50ms?: number;
  p99ms?: number;
}

async function sequential(n: number): Promise<Rate> {
  const j = await Journal.open({ path: freshPath(), hub: "bench" });
  const lat: number[] = [];
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const s = performance.now();
    await j.append(benchAlarmDraft(i));
    lat.push(performance.now() - s);
  }
  const secs = (performance.now() - t0) / 1000;
  await j.close();
  lat.sort((a, b) => a - b);
  return { events: n, seconds: r2(secs), perSec: Math.round(n / secs), p50ms: r2(pct(lat, 50)), p99ms: r2(pct(lat, 99)) };
}

async function concurrent(n: number, appenders: number): Promise<Rate> {
  const j = await Journal.open({ path: freshPath(), hub: "bench" });
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: appenders }, async () => {
      while (next < n) {
        const i = next++;
        const s = performance.now();
        await j.append(benchAlarmDraft(i));
        lat.push(performance.now() - s);
      }
    }),
  );
  const secs = (performance.now() - t0) / 1000;
  await j.close();
  lat.sort((a, b) => a - b);
  return { events: n, seconds: r2(secs), perSec: Math.round(n / secs), p50ms: r2(pct(lat, 50)), p99ms: r2(pct(lat, 99)) };
}

async function batched(n: number, size: number): Promise<Rate> {
  const j = await Journal.open({ path: freshPath(), hub: "bench" });
  const t0 = performance.now();
  for (let i = 0; i < n; i += size) await j.appendMany(Array.from({ length: size }, (_, k) => benchAlarmDraft(i + k)));
  const secs = (performance.now() - t0) / 1000;
  await j.close();
  return { events: n, seconds: r2(secs), perSec: Math.round(n / secs) };
}

async function drain(rows: number, page: number): Promise<Rate & { rounds: number }> {
  const j = await Journal.open({ path: freshPath(), hub: "bench" });
  for (let i = 0; i < rows; i += 1000) await j.appendMany(Array.from({ length: 1000 }, (_, k) => benchAlarmDraft(i + k)));
  let removed = 0;
  let rounds = 0;
  const t0 = performance.now();
  for (;;) {
    const due = await j.pending(page);
    if (due.length === 0) break;
    removed += await j.ack(due.map((d) => d.envelope.id));
    rounds++;
  }
  const secs = (performance.now() - t0) / 1000;
  await j.close();
  if (removed !== rows) throw new Error(`drain removed ${removed} of ${rows}`);
  return { events: rows, seconds: r2(secs), perSec: Math.round(rows / secs), rounds };
}

const machine = {
  ...machineInfo(),
  dir,
  disk: diskInfo(dir),
};
console.log(`machine: ${machine.cpu} x${machine.cores}, node ${machine.node}, ${machine.os}, ${machine.memGiB} GiB RAM`);
console.log(
  `disk: ${machine.disk.device} ${machine.disk.fsType} on ${machine.disk.mount}, ${machine.disk.rotational}, ${machine.disk.freeGiB} GiB free (bench dir ${dir})`,
);

try {
  const fsync = rawFdatasync(dir, 200);
  const seq = await sequential(2000);
  const c64 = await concurrent(20_000, 64);
  const many = await batched(20_000, 100);
  const dr = await drain(20_000, 500);

  console.log("");
  console.table({
    "raw 4 KiB write + fdatasync": { "per s": fsync.perSec, "p50 ms": fsync.p50, "p99 ms": fsync.p99, events: 200 },
    "append, 1 in flight (awaited)": { "per s": seq.perSec, "p50 ms": seq.p50ms, "p99 ms": seq.p99ms, events: seq.events },
    "append, 64 concurrent (group commit)": { "per s": c64.perSec, "p50 ms": c64.p50ms, "p99 ms": c64.p99ms, events: c64.events },
    "appendMany(100)": { "per s": many.perSec, "p50 ms": "", "p99 ms": "", events: many.events },
    "drain: pending(500) + ack(500)": { "per s": dr.perSec, "p50 ms": "", "p99 ms": "", events: dr.events },
  });
  console.log(
    JSON.stringify({
      bench: "journal",
      machine,
      fdatasync4k: fsync,
      appendSequential: seq,
      append64Concurrent: c64,
      appendMany100: many,
      drainPending500Ack500: dr,
      targets: { durableCommitsPerSec: 2000, drainPerSec: 10_000 },
    }),
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
