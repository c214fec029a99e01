// Child process for the resilience test: runs the hub daemon (no devices, just hub + uplink), journals
// `count` events as fast as it can and prints each id on its own line once its commit resolved, then
// waits until the relay has acknowledged everything (journal empty) and prints "drained".
// count 0: drain only. Other lines start with "# ". stdout to a pipe is synchronous on Linux, so a
// printed id is in the pipe before a SIGKILL can land.
import type { EventDraft } from "../../protocol/envelope.js";
import { startHub } from "../../gateway/src/daemon/run.js";
import { testLogger } from "./relay-external.js";

const configFile = process.argv[2];
const count = Number(process.argv[3] ?? 0);
const CONCURRENCY = 32;
if (!configFile || !Number.isInteger(count) || count < 0) {
  process.stderr.write("usage: hub-burst <hub.yaml> <count>\n");
  process.exit(2);
}

const running = await startHub(configFile, { log: testLogger("anxin-hub") });
process.stdout.write(`# boot ${running.journal.boot} rows ${(await running.journal.stats()).rows}\n`);

const draft = (i: number): EventDraft =>
  i % 500 === 499
    ? { kind: "alarm", type: "gas", severity: "critical", device: "gas-1", room: "kitchen", data: { lel: 30, i } }
    : { kind: "reading", type: "detector_level", severity: "info", device: "gas-1", data: { lel: 1, i } };

let next = 0;
async function appender(): Promise<void> {
  while (next < count) {
    const env = await running.journal.append(draft(next++));
    process.stdout.write(`${env.id}\n`);
    running.uplink?.nudge();
  }
}
await Promise.all(Array.from({ length: CONCURRENCY }, appender));
process.stdout.write(`# appended ${count}\n`);

for (;;) {
  if ((await running.journal.stats()).rows === 0) break;
  await new Promise((r) => setTimeout(r, 50));
}
process.stdout.write(`# stats ${JSON.stringify(running.uplink?.status() ?? null)}\n`);
process.stdout.write("drained\n");
await running.stop();
process.exit(0);
