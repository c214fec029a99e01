/**
 * Compresses zigbee-herdsman's fixed waits (utils/wait: the 3 s NIB settle poll, the 10 s pause
 * before interviewing a 0x120B end device, the 500 ms IAS enrolment polls, the 2–3 s recovery
 * pauses) so a test walks the same code paths in a fraction of the time. Every herdsman module
 * reaches `wait` through the getter on utils/index, so replacing the export is enough.
 */
import { createRequire } from "node:module";

type WaitModule = { wait: (ms: number) => Promise<void> };

const require = createRequire(import.meta.url);
const waitModule = require("zigbee-herdsman/dist/utils/wait.js") as WaitModule;
const original = waitModule.wait;

/** Scales every herdsman wait by `factor`; returns the function that restores real waits. */
export function compressHerdsmanWaits(factor: number): () => void {
  waitModule.wait = (ms: number) => original(Math.ceil(ms * factor));
  return () => {
    waitModule.wait = original;
  };
}

const quiet = { debug: () => {}, info: () => {}, warning: () => {}, error: () => {} };

/**
 * Silences herdsman's and the converters' console logging unless ANXIN_TEST_LOG is set
 * (ANXIN_TEST_LOG=debug prints herdsman's debug log, including every MT frame).
 */
export function quietHerdsman(): void {
  const herdsman = require("zigbee-herdsman") as { setLogger(l: unknown): void };
  const converters = require("zigbee-herdsman-converters") as { setLogger(l: unknown): void };
  const level = process.env.ANXIN_TEST_LOG;
  if (!level) {
    herdsman.setLogger(quiet);
    converters.setLogger(quiet);
    return;
  }
  const print = (tag: string) => (msg: unknown, ns?: string) =>
    console.log(`${tag} ${ns ?? ""} ${typeof msg === "function" ? (msg as () => string)() : String(msg)}`);
  herdsman.setLogger({ ...quiet, info: print("I"), warning: print("W"), error: print("E"), ...(level === "debug" ? { debug: print("D") } : {}) });
}
