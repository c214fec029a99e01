// A private Mosquitto for tests that must kill a broker: its own config in a temp dir, a free loopback
// port, anonymous access, no persistence. kill9() and start() again on the same port.
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { freePort } from "./relay-rig.js";

export const MOSQUITTO_BIN = "/usr/sbin/mosquitto";

/** Why a private broker cannot run here, or false. */
export function mosquittoMissing(): string | false {
  return existsSync(MOSQUITTO_BIN) ? false : `${MOSQUITTO_BIN} not found (install the mosquitto package)`;
}

export interface OwnMosquitto {
  port: number;
  url: string;
  /** True while the broker process runs. */
  readonly running: boolean;
  /** Starts (again) on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** SIGKILL, as a crash would; resolves once the process is gone. */
  kill9(): Promise<void>;
  /** Kills it if running and removes the temp dir. */
  close(): Promise<void>;
  /** Last lines the broker wrote (diagnostics). */
  output(): string;
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: "127.0.0.1" });
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export async function ownMosquitto(): Promise<OwnMosquitto> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-mosq-"));
  const port = await freePort();
  const conf = path.join(dir, "mosquitto.conf");
  await writeFile(
    conf,
    [`listener ${port} 127.0.0.1`, "allow_anonymous true", "persistence false", "set_tcp_nodelay true", "max_queued_messages 100000", "log_dest stderr", "log_type error", "log_type warning", ""].join("\n"),
  );
  let child: ChildProcess | null = null;
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-4000);
  };

  const startOnce = async (): Promise<boolean> => {
    const c = spawn(MOSQUITTO_BIN, ["-c", conf], { stdio: ["ignore", "pipe", "pipe"] });
    child = c;
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    const exited = new Promise<false>((r) => c.once("exit", () => r(false)));
    const end = Date.now() + 5000;
    for (;;) {
      const r = await Promise.race([canConnect(port), exited]);
      if (r) return true;
      if (c.exitCode !== null || c.signalCode !== null) return false;
      if (Date.now() > end) {
        c.kill("SIGKILL");
        return false;
      }
      await new Promise((res) => setTimeout(res, 20));
    }
  };

  const kill9 = async () => {
    const c = child;
    child = null;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    const gone = new Promise<void>((r) => c.once("exit", () => r()));
    c.kill("SIGKILL");
    await gone;
  };

  const m: OwnMosquitto = {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    get running() {
      const c = child;
      return c !== null && c.exitCode === null && c.signalCode === null;
    },
    start: async () => {
      // A port just released may refuse the bind for a moment; try a few times.
      for (let i = 0; i < 10; i++) {
        if (await startOnce()) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      throw new Error(`mosquitto did not start on port ${port}: ${out}`);
    },
    kill9,
    close: async () => {
      await kill9();
      await rm(dir, { recursive: true, force: true });
    },
    output: () => out,
  };
  await m.start();
  return m;
}

export const MOSQUITTO_PASSWD_BIN = "/usr/bin/mosquitto_passwd";

/** Adds (or replaces) a login in a Mosquitto password file, creating the file if needed. */
export async function mosquittoPasswd(file: string, user: string, password: string): Promise<void> {
  const args = existsSync(file) ? ["-b", file, user, password] : ["-c", "-b", file, user, password];
  const c = spawn(MOSQUITTO_PASSWD_BIN, args, { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  c.stderr?.on("data", (d: Buffer) => (err += d.toString()));
  const code = await new Promise<number | null>((r) => c.once("exit", r));
  if (code !== 0) throw new Error(`mosquitto_passwd ${user} failed (${code}): ${err}`);
}

export interface ConfiguredMosquitto {
  /** SIGHUP: reloads password and ACL files, as `systemctl reload mosquitto` does. */
  reload(): void;
  /** Kills the broker and starts it again on the same configuration (fresh connection counts). */
  restart(): Promise<void>;
  close(): Promise<void>;
  output(): string;
}

/**
 * Mosquitto on a configuration file the test wrote (working directory `cwd`, where persistence lands);
 * resolves once it logs that it runs with every port in `ports` open. Readiness comes from the log, not
 * from probing: Mosquitto 2.0 miscounts connections that close (one slot too many is freed per close),
 * so a probe would skew a test of max_connections. The configuration must keep notice-level logging on
 * stderr (Mosquitto's default). The caller removes its files.
 */
export async function startMosquittoWithConf(confFile: string, cwd: string, ports: number[]): Promise<ConfiguredMosquitto> {
  let out = "";
  const keep = (d: Buffer) => {
    out = (out + d.toString()).slice(-8000);
  };
  let c: ChildProcess;
  let gone: Promise<void>;
  const close = async () => {
    if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await gone;
  };
  const start = async () => {
    c = spawn(MOSQUITTO_BIN, ["-c", confFile], { cwd, stdio: ["ignore", "pipe", "pipe"] });
    c.stdout?.on("data", keep);
    c.stderr?.on("data", keep);
    const child = c;
    gone = new Promise<void>((r) => child.once("exit", () => r()));
    let log = "";
    child.stderr?.on("data", (d: Buffer) => (log += d.toString()));
    const ready = () => / running\n/.test(log) && ports.every((p) => log.includes(`listen socket on port ${p}.`));
    const end = Date.now() + 5000;
    while (!ready()) {
      if (c.exitCode !== null || Date.now() > end) {
        await close();
        throw new Error(`mosquitto (${confFile}) did not start with ports ${ports.join(", ")} open: ${out}`);
      }
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await start();
  return {
    reload: () => void c.kill("SIGHUP"),
    restart: async () => {
      await close();
      await start();
    },
    close,
    output: () => out,
  };
}
