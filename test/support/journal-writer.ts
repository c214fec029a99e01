// Child process for the kill test: appends alarms in a burst, forever, and prints each id on its own line
// the moment its commit resolved. stdout to a pipe is synchronous on Linux, so a printed id is already
// in the pipe when the parent's SIGKILL lands.
import { Journal } from "../../gateway/src/journal/journal.js";

const path = process.argv[2];
const concurrency = Number(process.argv[3] ?? 16);
if (!path) {
  process.stderr.write("usage: journal-writer <db path> [concurrency]\n");
  process.exit(2);
}

const journal = await Journal.open({ path, hub: "kill-test" });
process.stdout.write(`boot ${journal.boot}\n`);

let n = 0;
async function appender(): Promise<never> {
  for (;;) {
    const env = await journal.append({
      kind: "alarm",
      type: "gas",
      severity: "critical",
      device: "gas-1",
      room: "kitchen",
      data: { lel: 25, n: n++ },
      actions: [{ action: "valve_closed", target: "valve-1", ok: true }],
    });
    process.stdout.write(`${env.id}\n`);
  }
}

await Promise.all(Array.from({ length: concurrency }, appender));
