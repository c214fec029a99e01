/**
 * Hardware-free RS-485 bench for integration tests.
 *
 * Wiring (all PTYs live in a fresh temp dir):
 *   plain:  hub -> DIR/ttyA <=socat=> DIR/ttyB <- modbus_slave.py
 *   timed:  hub -> DIR/ttyM <=timed_line.py=> DIR/ttyS2 <=socat=> DIR/ttyB <- modbus_slave.py
 *
 * The slave is Debian's pymodbus, not the hub's Modbus library, so the two
 * sides cannot share a bug. Plain PTYs ignore baud and deliver whole frames
 * instantly; use `timed: true` for realistic byte timing and fault injection.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const PYTHON = "/usr/bin/python3"; // Debian's interpreter: pyenv/venv shims lack pymodbus
const SLAVE_SCRIPT = fileURLToPath(new URL("../bench/modbus_slave.py", import.meta.url));
const LINE_SCRIPT = fileURLToPath(new URL("../bench/timed_line.py", import.meta.url));
const READY_TIMEOUT_MS = 10_000;
const REPLY_TIMEOUT_MS = 5_000;
const DEBUG = process.env.ANXIN_BENCH_DEBUG === "1"; // mirror children's stderr live

// socat cannot ask to die with its parent, so exec it through a one-line
// wrapper that sets PR_SET_PDEATHSIG first (it survives exec).
const DIE_WITH_PARENT =
  "import ctypes,os,signal,sys;ctypes.CDLL(None).prctl(1,signal.SIGTERM);os.execvp(sys.argv[1],sys.argv[1:])";

export type DeviceKind = "co" | "lel" | "valve" | "radar" | "relay";
export type Table = "hr" | "ir" | "co" | "di";
export type ValveMode = "normal" | "jam" | "stuck" | "slow";

/** Commands understood by modbus_slave.py (one JSON line each). */
export type SlaveCommand =
  | { cmd: "set"; unit: number; table: Table; address: number; value?: number | boolean; values?: Array<number | boolean> }
  | { cmd: "get"; unit: number; table: Table; address: number; count?: number }
  | { cmd: "co"; unit: number; ppm?: number; alarm_ppm?: number; temp_c?: number; fault?: boolean }
  | { cmd: "lel"; unit: number; percent?: number; fault?: boolean; calibration?: boolean }
  | { cmd: "radar"; unit: number; presence?: boolean | number; lux?: number; distance_m?: number; status?: number }
  | { cmd: "valve"; unit: number; mode?: ValveMode; travel_ms?: number; state?: "open" | "closed" }
  | { cmd: "stats"; unit: number }
  | { cmd: "units" };

/** Commands understood by timed_line.py. Faults act on slave->master replies. */
export type LineCommand =
  | { fault: "crc" | "drop" | "noise"; count?: number }
  | { fault: "late"; ms: number; count?: number }
  | { fault: "none" }
  | { cmd: "stats" | "unplug" | "replug" };

export interface BenchReply {
  ok: true;
  values?: number[];
  close_commands?: number;
  requests?: number;
  [key: string]: unknown;
}

export interface Control<C extends object = Record<string, unknown>> {
  /** Sends one command and resolves with its reply; rejects on `ok:false`, timeout or exit. */
  send(cmd: C): Promise<BenchReply>;
}

export interface BenchOptions {
  /** Device kind -> unit id, e.g. `{ co: 1, valve: 3 }`; a list of pairs when a kind repeats. */
  devices: Record<string, number> | Array<[DeviceKind, number]>;
  baud?: number;
  /** Put timed_line.py between hub and slave (byte pacing + fault injection). */
  timed?: boolean;
}

export interface Bench {
  /** The serial path the hub opens. */
  readonly path: string;
  readonly dir: string;
  readonly baud: number;
  readonly slave: Control<SlaveCommand>;
  readonly line?: Control<LineCommand>;
  /** Kills every child and removes the temp dir; safe to call twice. */
  stop(): Promise<void>;
  /** The device dies (SIGKILL): the line stays, nobody answers. */
  killSlave(): Promise<void>;
  /** The device powers up again with its default state. */
  restartSlave(): Promise<void>;
  /** The hub-side serial path vanishes under the hub. */
  unplug(): Promise<void>;
  /** The hub-side path comes back (a new PTY at the same path). */
  replug(): Promise<void>;
}

export type BenchAvailability = { ok: true } | { ok: false; reason: string };

let availability: BenchAvailability | undefined;

// Probe each import separately so the reason names the package to install.
const PROBE = `
import importlib, sys
for mod, pkg in (("serial", "python3-serial"), ("serial_asyncio", "python3-serial-asyncio"), ("pymodbus", "python3-pymodbus")):
    try:
        importlib.import_module(mod)
    except Exception as exc:
        print(f"{pkg}: {exc}"); sys.exit(1)
try:
    from pymodbus.server import StartAsyncSerialServer
except Exception as exc:
    print(f"python3-pymodbus >= 3.0: {exc}"); sys.exit(1)
`;

export function benchAvailable(): BenchAvailability {
  if (availability) return availability;
  availability = probe();
  return availability;
}

function probe(): BenchAvailability {
  const socat = spawnSync("socat", ["-V"], { stdio: "ignore", timeout: 5000 });
  if (socat.error || socat.status !== 0) {
    return { ok: false, reason: "socat not found: apt-get install socat" };
  }
  if (!existsSync(PYTHON)) {
    return { ok: false, reason: `${PYTHON} not found: apt-get install python3 python3-pymodbus python3-serial` };
  }
  const py = spawnSync(PYTHON, ["-c", PROBE], { encoding: "utf8", timeout: 15_000 });
  if (py.error || py.status !== 0) {
    const what = (py.stdout || py.stderr || String(py.error)).trim();
    const pkg = what.split(":")[0] ?? "python3-pymodbus";
    return { ok: false, reason: `${PYTHON} cannot load the bench modules (${what}): apt-get install ${pkg}` };
  }
  return { ok: true };
}

// ---------------------------------------------------------------------------
// Child bookkeeping: everything we spawn is SIGKILLed if the test process exits.

const live = new Set<ChildProcess>();
let exitHookInstalled = false;

function track(child: ChildProcess): void {
  live.add(child);
  child.once("exit", () => live.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on("exit", () => {
      for (const c of live) {
        try {
          c.kill("SIGKILL");
        } catch {
          /* already gone */
        }
      }
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** A spawned helper with a JSON-lines control channel on stdin/stdout. */
class JsonChild {
  readonly proc: ChildProcess;
  private readonly pending: Array<{
    cmd: object;
    resolve: (r: BenchReply) => void;
    reject: (e: Error) => void;
    timer: NodeJS.Timeout;
  }> = [];
  private stderrTail = "";
  private ready: { resolve: () => void; reject: (e: Error) => void } | undefined;
  readonly exited: Promise<void>;
  exitInfo: string | undefined;

  constructor(
    readonly name: string,
    args: string[],
  ) {
    this.proc = spawn(PYTHON, args, { stdio: ["pipe", "pipe", "pipe"] });
    track(this.proc);
    this.proc.stdin!.on("error", () => {}); // EPIPE after exit surfaces via 'exit'
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-4000);
      if (DEBUG) process.stderr.write(chunk);
    });
    createInterface({ input: this.proc.stdout! }).on("line", (line) => this.onLine(line));
    this.exited = new Promise((resolve) => {
      this.proc.once("exit", (code, signal) => {
        this.exitInfo ??= signal ? `killed by ${signal}` : `exit code ${code}`;
        const err = new Error(`${this.name} ${this.exitInfo}${this.stderrHint()}`);
        this.ready?.reject(err);
        this.ready = undefined;
        for (const p of this.pending.splice(0)) {
          clearTimeout(p.timer);
          p.reject(err);
        }
        resolve();
      });
      // A spawn failure emits 'error' and possibly no 'exit': settle here too.
      this.proc.once("error", (e) => {
        if (this.exitInfo !== undefined) return;
        this.exitInfo = `failed to start: ${e.message}`;
        this.ready?.reject(new Error(`${this.name}: cannot start ${PYTHON}: ${e.message}`));
        this.ready = undefined;
        resolve();
      });
    });
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  private stderrHint(): string {
    const tail = this.stderrTail.trim();
    return tail ? `\n--- ${this.name} stderr ---\n${tail}` : "";
  }

  waitReady(timeoutMs = READY_TIMEOUT_MS): Promise<void> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.ready = undefined;
        reject(new Error(`${this.name} not ready after ${timeoutMs} ms${this.stderrHint()}`));
      }, timeoutMs);
      this.ready = {
        resolve: () => {
          clearTimeout(timer);
          resolve();
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      };
    });
  }

  private onLine(line: string): void {
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(line) as Record<string, unknown>;
    } catch {
      process.stderr.write(`${this.name}: unexpected stdout line: ${line}\n`);
      return;
    }
    if (msg.ready === true) {
      this.ready?.resolve();
      this.ready = undefined;
      return;
    }
    const p = this.pending.shift();
    if (!p) {
      process.stderr.write(`${this.name}: reply without a command: ${line}\n`);
      return;
    }
    clearTimeout(p.timer);
    if (msg.ok === true) p.resolve(msg as BenchReply);
    else {
      const why = msg.error ?? line;
      p.reject(new Error(`${this.name} rejected ${JSON.stringify(p.cmd)}: ${typeof why === "string" ? why : JSON.stringify(why)}`));
    }
  }

  send(cmd: object, timeoutMs = REPLY_TIMEOUT_MS): Promise<BenchReply> {
    if (!this.alive) {
      return Promise.reject(new Error(`${this.name} is not running (${this.exitInfo})`));
    }
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        const i = this.pending.findIndex((p) => p.timer === timer);
        if (i >= 0) this.pending.splice(i, 1);
        reject(new Error(`${this.name}: no reply to ${JSON.stringify(cmd)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.push({ cmd, resolve, reject, timer });
      this.proc.stdin!.write(`${JSON.stringify(cmd)}\n`);
    });
  }

  /** Signals the child and waits; escalates to SIGKILL after graceMs. */
  async kill(signal: NodeJS.Signals = "SIGTERM", graceMs = 2000): Promise<void> {
    if (!this.alive) return;
    this.proc.kill(signal);
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), graceMs);
    await this.exited;
    clearTimeout(timer);
  }
}

/** socat PTY pair; socat creates (and on exit removes) both symlinks. */
class SocatPair {
  readonly proc: ChildProcess;
  readonly exited: Promise<void>;
  private running = true;
  private stderrTail = "";

  constructor(
    readonly a: string,
    readonly b: string,
  ) {
    this.proc = spawn(
      PYTHON,
      ["-c", DIE_WITH_PARENT, "socat", `pty,raw,echo=0,link=${a}`, `pty,raw,echo=0,link=${b}`],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    track(this.proc);
    this.proc.stderr!.setEncoding("utf8");
    this.proc.stderr!.on("data", (chunk: string) => {
      this.stderrTail = (this.stderrTail + chunk).slice(-2000);
      if (DEBUG) process.stderr.write(chunk);
    });
    this.exited = new Promise((resolve) =>
      this.proc.once("exit", () => {
        this.running = false;
        resolve();
      }),
    );
  }

  get alive(): boolean {
    return this.running;
  }

  async waitLinks(timeoutMs = 5000): Promise<void> {
    const until = Date.now() + timeoutMs;
    while (!(existsSync(this.a) && existsSync(this.b))) {
      if (!this.alive) throw new Error(`socat exited before creating its PTYs: ${this.stderrTail.trim()}`);
      if (Date.now() > until) throw new Error(`socat PTYs ${this.a}, ${this.b} not created in ${timeoutMs} ms`);
      await sleep(10);
    }
  }

  async kill(): Promise<void> {
    if (!this.alive) return;
    this.proc.kill("SIGTERM");
    const timer = setTimeout(() => this.proc.kill("SIGKILL"), 2000);
    await this.exited;
    clearTimeout(timer);
    // socat unlinks on a clean exit; make sure after a SIGKILL too.
    rmSync(this.a, { force: true });
    rmSync(this.b, { force: true });
  }
}

// ---------------------------------------------------------------------------

function deviceSpec(devices: BenchOptions["devices"]): string {
  const entries = Array.isArray(devices) ? devices : Object.entries(devices);
  if (entries.length === 0) throw new Error("startBench: no devices given");
  return entries.map(([kind, unit]) => `${kind}=${unit}`).join(",");
}

export async function startBench(opts: BenchOptions): Promise<Bench> {
  const avail = benchAvailable();
  if (!avail.ok) throw new Error(`Modbus bench unavailable: ${avail.reason}`);

  const baud = opts.baud ?? 9600;
  const timed = opts.timed ?? false;
  const spec = deviceSpec(opts.devices);
  const dir = mkdtempSync(join(tmpdir(), "anxin-bench-"));
  const slavePort = join(dir, "ttyB");
  const socatA = join(dir, timed ? "ttyS2" : "ttyA"); // hub end, or timed line's slave end
  const hubPath = timed ? join(dir, "ttyM") : socatA;

  let socat: SocatPair | undefined;
  let slave: JsonChild | undefined;
  let line: JsonChild | undefined;
  let stopping: Promise<void> | undefined;

  const startSocat = async (): Promise<void> => {
    socat = new SocatPair(socatA, slavePort);
    await socat.waitLinks();
  };
  const startSlave = async (): Promise<void> => {
    const child = new JsonChild("modbus_slave", [SLAVE_SCRIPT, "--port", slavePort, "--baud", String(baud), "--devices", spec]);
    slave = child;
    await child.waitReady();
  };
  const startLine = async (): Promise<void> => {
    const child = new JsonChild("timed_line", [
      LINE_SCRIPT, "--master-link", hubPath, "--slave-port", socatA, "--baud", String(baud),
    ]);
    line = child;
    await child.waitReady();
  };

  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      await line?.kill();
      await slave?.kill();
      await socat?.kill();
      rmSync(dir, { recursive: true, force: true });
    })();
    return stopping;
  };

  try {
    await startSocat();
    await startSlave();
    if (timed) await startLine();
  } catch (e) {
    await stop();
    throw e;
  }

  const slaveControl: Control<SlaveCommand> = {
    send: (cmd) => (slave ? slave.send(cmd) : Promise.reject(new Error("modbus_slave is not running"))),
  };
  const lineControl: Control<LineCommand> | undefined = timed
    ? { send: (cmd) => line!.send(cmd) }
    : undefined;

  const bench: Bench = {
    path: hubPath,
    dir,
    baud,
    slave: slaveControl,
    ...(lineControl ? { line: lineControl } : {}),
    stop,
    async killSlave() {
      await slave?.kill("SIGKILL");
    },
    async restartSlave() {
      await slave?.kill("SIGKILL");
      await startSlave();
    },
    async unplug() {
      if (line) {
        await line.send({ cmd: "unplug" });
        return;
      }
      // Without a timed line the hub's PTY belongs to socat: killing socat is
      // the unplug. The slave then loses its port too and exits (code 2).
      await socat?.kill();
      const s = slave;
      if (s) await Promise.race([s.exited, sleep(3000).then(() => s.kill("SIGKILL"))]);
    },
    async replug() {
      if (line) {
        await line.send({ cmd: "replug" });
        return;
      }
      if (socat?.alive) return; // still plugged
      await slave?.kill("SIGKILL");
      await startSocat();
      await startSlave();
    },
  };
  return bench;
}
