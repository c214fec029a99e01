// Turns frames captured from a real device into draft entries for test/fixtures/zigbee/frames.json.
//   node --import tsx test/support/zigbee/frame-from-log.ts --modelID SmokeSensor-EM --manufacturer HEIMAN < herdsman-debug.log
//   node --import tsx test/support/zigbee/frame-from-log.ts --modelID SmokeSensor-EM --manufacturer HEIMAN --cluster ssIasZone --frame "19 2a 00 0100 00 17 0000"
// From a log it takes z-stack "AF - incomingMsg" debug lines (namespace zh:zstack:znp). Each draft carries the state the
// converters decode today as `expected`: trim it to what the device really signalled when you captured it.
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { setLogger } from "zigbee-herdsman-converters";
import { decodeFrame } from "./converter-harness.js";

interface Found {
  cluster: number;
  frame: string;
}

/** z-stack logs every incoming APS data frame as `AF - incomingMsg - {json}`, data as a serialised Buffer. */
export function framesFromZstackLog(text: string): Found[] {
  const out: Found[] = [];
  for (const line of text.split("\n")) {
    const at = line.indexOf("AF - incomingMsg - ");
    if (at < 0) continue;
    try {
      const msg = JSON.parse(line.slice(at + "AF - incomingMsg - ".length)) as { clusterid: number; data: { data: number[] } | number[] };
      const bytes = Array.isArray(msg.data) ? msg.data : msg.data.data;
      out.push({ cluster: msg.clusterid, frame: Buffer.from(bytes).toString("hex") });
    } catch {
      // a truncated or foreign line: skip it
    }
  }
  return out;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      modelID: { type: "string" },
      manufacturer: { type: "string" },
      cluster: { type: "string" },
      frame: { type: "string" },
      log: { type: "string" },
    },
  });
  if (!values.modelID || !values.manufacturer) throw new Error("--modelID and --manufacturer are required (genBasic modelId / manufacturerName of the device)");
  setLogger({ debug: () => {}, info: () => {}, warning: () => {}, error: (m: unknown) => console.error(m) });
  const found: Found[] = values.frame
    ? [{ cluster: Number.isNaN(Number(values.cluster)) ? -1 : Number(values.cluster), frame: values.frame }]
    : framesFromZstackLog(readFileSync(values.log ?? 0, "utf8"));
  const entries = [];
  for (const f of found) {
    const cluster = f.cluster === -1 ? (values.cluster ?? "") : f.cluster;
    try {
      const d = await decodeFrame({ modelID: values.modelID, manufacturerName: values.manufacturer, cluster, frame: f.frame });
      entries.push({
        description: `TODO: what the device did (captured ${new Date().toISOString().slice(0, 10)})`,
        model: d.model ?? "TODO: no converter definition matched",
        modelID: values.modelID,
        manufacturerName: values.manufacturer,
        cluster: d.cluster,
        type: d.type,
        frame: f.frame.replace(/\s+/g, "").replace(/(..)/g, "$1 ").trim(),
        expected: d.state,
        source: "captured",
      });
    } catch (err) {
      console.error(`skipped cluster ${cluster} frame ${f.frame}: ${(err as Error).message}`);
    }
  }
  process.stdout.write(`${JSON.stringify(entries, null, 2)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    console.error((err as Error).message);
    process.exit(1);
  });
}
