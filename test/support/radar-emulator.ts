// Runs test/bench/seeed_radar.py (Debian's python3 with pyserial): an MR60FDA1 / MR60BHA1 stand-in written
// apart from the hub's codec, on the device end of a PTY pair.
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const PYTHON = "/usr/bin/python3"; // Debian's interpreter: pyenv shims lack pyserial
const SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "bench", "seeed_radar.py");

export type RadarFact = "presence" | "motion" | "fall" | "heart" | "breath" | "inbed" | "distance";
export interface RadarStep {
  at: number;
  send?: Array<[RadarFact, number]>;
  raw?: string;
  every?: number;
}

/** Why the emulator cannot run here, or null when it can. */
export function radarEmulatorSkip(): string | false {
  const socat = spawnSync("socat", ["-V"], { stdio: "ignore" });
  if (socat.error || socat.status !== 0) return "socat not found: apt-get install socat";
  const py = spawnSync(PYTHON, ["-c", "import serial"], { stdio: "ignore" });
  if (py.error || py.status !== 0) return `${PYTHON} cannot import serial: apt-get install python3-serial`;
  return false;
}

export interface RadarEmulator {
  /** Resolves when the last step has been written. */
  done: Promise<void>;
  stop(): Promise<void>;
}

export async function startRadarEmulator(port: string, steps: RadarStep[], model = "MR60FDA1"): Promise<RadarEmulator> {
  const child: ChildProcess = spawn(PYTHON, [SCRIPT, "--port", port, "--script", JSON.stringify(steps), "--model", model], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  const waiters: Array<() => void> = [];
  child.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
    for (const w of [...waiters]) w();
  });
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const seen = (word: string) =>
    new Promise<void>((resolve, reject) => {
      const check = () => (out.includes(word) ? resolve() : undefined);
      waiters.push(check);
      child.once("exit", (code) => (out.includes(word) ? resolve() : reject(new Error(`radar emulator exited (${code}) before "${word}": ${err.trim()}`))));
      check();
    });
  const done = seen("done");
  done.catch(() => {});
  await seen("ready");
  return {
    done,
    async stop() {
      child.kill("SIGTERM");
      await exited;
    },
  };
}
