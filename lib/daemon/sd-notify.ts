// sd_notify for Type=notify units: READY/STOPPING/STATUS and health-gated watchdog pings.
// Every failure here is logged and swallowed: a broken notify channel must never take the hub down
// (systemd's own timeouts and the watchdog decide what happens then).
import { execFile } from "node:child_process";
import { unixDgramAvailable, unixDgramMissing, unixDgramSocket, type UnixDgramSocket } from "./unix-dgram.js";

export interface Notifier {
  /** READY=1: send once the hub actually guards the home (bus, journal, rules up). */
  ready(): void;
  /** STOPPING=1: send when shutdown begins. */
  stopping(): void;
  /** STATUS=…: free text shown by `systemctl status`. */
  status(text: string): void;
  /** Stops watchdog pings; later calls become no-ops. */
  close(): void;
  /** The watchdog ping period in ms, or undefined when this process is not watched. */
  readonly watchdogIntervalMs: number | undefined;
}

export interface NotifierOptions {
  /** Pings are sent only while this returns true (a throw counts as false). */
  healthy: () => boolean;
  log?: (msg: string, err?: unknown) => void;
  /** Read once at creation; default process.env. */
  env?: NodeJS.ProcessEnv;
  /** Compared with WATCHDOG_PID; default process.pid. */
  pid?: number;
  /** Helper used for abstract NOTIFY_SOCKET addresses, and when unix-dgram is missing; default "systemd-notify". */
  notifyCommand?: string;
  /** Whether the unix-dgram addon can be used; default: try to load it (tests pass false). */
  datagrams?: boolean;
}

/** Pinging faster than this is pointless for a node process; it only guards against a tight loop. */
const MIN_INTERVAL_MS = 10;
/** A datagram not accepted within this time is dropped (PID 1 stuck or gone). */
const SEND_TIMEOUT_MS = 1000;
/** Per-message sockets still waiting; beyond this, messages are dropped instead of piling up. */
const MAX_IN_FLIGHT = 4;
const COMMAND_TIMEOUT_MS = 5000;

/**
 * The ping period systemd asks for: WATCHDOG_USEC / 3 (sd_watchdog_enabled(3) semantics), or undefined
 * when no watchdog is set, the value is invalid, or WATCHDOG_PID names another process.
 */
export function watchdogIntervalMs(env: NodeJS.ProcessEnv, pid: number): number | undefined {
  const raw = env.WATCHDOG_USEC;
  if (raw === undefined || raw === "") return undefined;
  const usec = Number(raw);
  if (!Number.isFinite(usec) || usec <= 0) return undefined;
  const watchedPid = env.WATCHDOG_PID;
  if (watchedPid !== undefined && watchedPid !== "" && Number(watchedPid) !== pid) return undefined;
  return Math.max(MIN_INTERVAL_MS, Math.floor(usec / 3000));
}

const defaultLog = (msg: string, err?: unknown): void => {
  console.warn(`sd-notify: ${msg}${err === undefined ? "" : `: ${errorText(err)}`}`);
};

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

type Transport = (message: string) => void;

export function createNotifier(opts: NotifierOptions): Notifier {
  const env = opts.env ?? process.env;
  const pid = opts.pid ?? process.pid;
  const log = opts.log ?? defaultLog;
  const safeLog = (msg: string, err?: unknown): void => {
    try {
      log(msg, err);
    } catch {
      // A throwing logger must not turn into a throwing notifier.
    }
  };

  const socketPath = env.NOTIFY_SOCKET;
  if (!socketPath) return noopNotifier();

  // Failure reporting on transitions only, so a dead socket does not flood the journal every 10 s.
  let failing = false;
  const onSent = (): void => {
    if (failing) {
      failing = false;
      safeLog("notify socket reachable again");
    }
  };
  const onFailed = (err: unknown): void => {
    if (!failing) {
      failing = true;
      safeLog(`cannot send to NOTIFY_SOCKET ${socketPath}`, err);
    }
  };

  let send: Transport;
  let watchdogAllowed = true;
  if (socketPath.startsWith("/") && (opts.datagrams ?? unixDgramAvailable())) {
    send = datagramTransport(socketPath, onSent, onFailed);
  } else if (socketPath.startsWith("/")) {
    // Without the optional addon the hub still runs under systemd: READY/STOPPING go through the helper
    // (as for abstract sockets, with the same limits), and no watchdog pings are sent.
    safeLog(
      `${opts.datagrams === false ? "datagram sockets disabled" : unixDgramMissing()}; using ${opts.notifyCommand ?? "systemd-notify"} for ` +
        "READY/STOPPING/STATUS (needs NotifyAccess=all) and sending no watchdog pings",
    );
    send = commandTransport(opts.notifyCommand ?? "systemd-notify", env, onSent, onFailed);
    watchdogAllowed = false;
  } else if (socketPath.startsWith("@")) {
    // unix-dgram cannot address abstract sockets. systemd-notify
    // can, but as a non-root service the datagram comes from the helper's PID, so systemd accepts it only
    // with NotifyAccess=all, and may still drop it once the helper has exited. Good enough to get through
    // READY/STOPPING; not reliable enough to carry the watchdog, so pings are off rather than flaky.
    safeLog(
      `NOTIFY_SOCKET ${socketPath} is an abstract socket; using ${opts.notifyCommand ?? "systemd-notify"} for ` +
        "READY/STOPPING/STATUS (needs NotifyAccess=all) and sending no watchdog pings",
    );
    send = commandTransport(opts.notifyCommand ?? "systemd-notify", env, onSent, onFailed);
    watchdogAllowed = false;
  } else {
    safeLog(`NOTIFY_SOCKET ${socketPath} is not a supported address; notifications disabled`);
    return noopNotifier();
  }

  const interval = watchdogAllowed ? watchdogIntervalMs(env, pid) : undefined;
  // WATCHDOG_PID naming another process is normal for a child that inherited the environment; stay quiet.
  const watchdogForOther = Boolean(env.WATCHDOG_PID) && Number(env.WATCHDOG_PID) !== pid;
  if (watchdogAllowed && env.WATCHDOG_USEC && interval === undefined && !watchdogForOther) {
    safeLog(`ignoring invalid WATCHDOG_USEC=${env.WATCHDOG_USEC}`);
  }

  let closed = false;
  let withheld = false;
  const isHealthy = (): boolean => {
    try {
      return opts.healthy() === true;
    } catch (err) {
      if (!withheld) safeLog("health check threw; treating the hub as unhealthy", err);
      return false;
    }
  };

  const timer =
    interval === undefined
      ? undefined
      : setInterval(() => {
          if (closed) return;
          if (isHealthy()) {
            if (withheld) {
              withheld = false;
              safeLog("hub healthy again; watchdog pings resumed");
            }
            send("WATCHDOG=1");
          } else if (!withheld) {
            // Withholding pings is the point: systemd restarts the hub after WatchdogSec without one.
            withheld = true;
            safeLog("hub unhealthy; withholding watchdog pings");
          }
        }, interval);
  timer?.unref();

  const guarded = (message: string): void => {
    if (closed) return;
    try {
      send(message);
    } catch (err) {
      onFailed(err);
    }
  };

  return {
    watchdogIntervalMs: interval,
    ready: () => guarded("READY=1"),
    stopping: () => guarded("STOPPING=1"),
    // A newline would start a new assignment in the datagram, so status text stays on one line.
    status: (text: string) => guarded(`STATUS=${String(text).replace(/[\r\n]+/g, " ").slice(0, 500)}`),
    close: () => {
      closed = true;
      if (timer) clearInterval(timer);
    },
  };
}

function noopNotifier(): Notifier {
  return { watchdogIntervalMs: undefined, ready() {}, stopping() {}, status() {}, close() {} };
}

// A fresh socket per message: an open datagram socket keeps the event loop alive, and a socket that exists only
// for the duration of one send can never hold up process exit (or leak) if close() is forgotten.
function datagramTransport(path: string, onSent: () => void, onFailed: (err: unknown) => void): Transport {
  let inFlight = 0;
  return (message: string) => {
    if (inFlight >= MAX_IN_FLIGHT) {
      onFailed(new Error(`${inFlight} notifications still pending; dropping ${message.split("=")[0]}`));
      return;
    }
    let sock: UnixDgramSocket;
    try {
      sock = unixDgramSocket();
    } catch (err) {
      onFailed(err);
      return;
    }
    inFlight++;
    let done = false;
    const finish = (err?: Error | null): void => {
      if (done) return;
      done = true;
      inFlight--;
      clearTimeout(guard);
      try {
        sock.close();
      } catch {
        // already closed
      }
      if (err) onFailed(err);
      else onSent();
    };
    sock.on("error", (err: Error) => finish(err));
    // A full receive queue leaves the send pending forever; give up after a while.
    const guard = setTimeout(() => finish(new Error("notify socket did not accept the message")), SEND_TIMEOUT_MS);
    guard.unref();
    try {
      const buf = Buffer.from(message, "utf8");
      sock.send(buf, 0, buf.length, path, (err) => finish(err ?? undefined));
    } catch (err) {
      finish(err instanceof Error ? err : new Error(String(err)));
    }
  };
}

function commandTransport(
  command: string,
  env: NodeJS.ProcessEnv,
  onSent: () => void,
  onFailed: (err: unknown) => void,
): Transport {
  return (message: string) => {
    try {
      const child = execFile(command, [message], { env, timeout: COMMAND_TIMEOUT_MS }, (err) => {
        if (err) onFailed(err);
        else onSent();
      });
      child.on("error", () => {
        // reported through the execFile callback
      });
    } catch (err) {
      onFailed(err);
    }
  };
}
