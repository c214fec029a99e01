// Runs every bench/*.bench.ts in turn as a child process (same node, --import tsx), shows its output as it
// comes and collects the final `{"bench": ...}` JSON line of each. Run: npm run bench
// BENCH_ONLY=valve-latency,poll-period picks some; BENCH_TIMEOUT_S bounds each one (default 600, or the
// bench's own allowance below when that is longer).
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const only = process.env.BENCH_ONLY?.split(",").map((s) => s.trim()).filter(Boolean);
const DEFAULT_TIMEOUT_S = 600;
/**
 * Benches that take longer than the default on a 2-vCPU machine by design: the full storm runs four variants
 * of 10,000 hubs (up to 600 s each plus setup), the Pi-class runs the valve and Zigbee benches per board.
 */
const ALLOWANCE_S: Record<string, number> = { "reconnect-storm": 4 * 660 + 300, "pi-hub": 1200 };
const timeoutSOf = (file: string): number => {
  if (process.env.BENCH_TIMEOUT_S) return Number(process.env.BENCH_TIMEOUT_S);
  return Math.max(DEFAULT_TIMEOUT_S, ALLOWANCE_S[file.replace(/\.bench\.ts$/, "")] ?? 0);
};
const files = readdirSync(here)
  .filter((f) => f.endsWith(".bench.ts"))
  .filter((f) => !only || only.includes(f.replace(/\.bench\.ts$/, "")))
  .sort();

interface Outcome {
  file: string;
  code: number | null;
  seconds: number;
  json: string | null;
}

function runOne(file: string): Promise<Outcome> {
  const started = Date.now();
  const timeoutMs = timeoutSOf(file) * 1000;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ["--import", "tsx", join(here, file)], { stdio: ["ignore", "pipe", "inherit"] });
    let json: string | null = null;
    createInterface({ input: child.stdout }).on("line", (line) => {
      process.stdout.write(`${line}\n`);
      if (line.startsWith('{"bench":')) json = line;
    });
    const timer = setTimeout(() => {
      process.stderr.write(`${file}: still running after ${timeoutMs / 1000} s, stopping it\n`);
      child.kill("SIGTERM");
      setTimeout(() => child.kill("SIGKILL"), 5000).unref();
    }, timeoutMs);
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ file, code, seconds: Math.round((Date.now() - started) / 100) / 10, json });
    });
  });
}

const outcomes: Outcome[] = [];
for (const file of files) {
  console.log(`\n=== ${file} ===`);
  outcomes.push(await runOne(file));
}

console.log("\n=== results ===");
for (const o of outcomes) {
  const status = o.code === 0 && o.json ? "ok" : `FAILED (exit ${o.code}${o.json ? "" : ", no result line"})`;
  console.log(`${o.file}: ${status}, ${o.seconds} s`);
}
for (const o of outcomes) if (o.json) console.log(o.json);
process.exitCode = outcomes.every((o) => o.code === 0 && o.json) ? 0 : 1;
