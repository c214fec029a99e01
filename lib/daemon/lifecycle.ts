// How a daemon ends: SIGTERM/SIGINT stop it cleanly once; an uncaught exception leaves the process in an
// unknown state, so it exits and systemd starts a clean one (both daemons keep unacknowledged work on disk).
import type { Logger } from "pino";

export function stopOnSignals(stop: () => Promise<void>, log: Logger): void {
  let signals = 0;
  const shutdown = (sig: string) => {
    if (signals++) return;
    log.info({ signal: sig }, "stopping");
    stop().then(
      () => process.exit(0),
      (e: Error) => {
        log.error({ err: e.message }, "error while stopping");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
  process.on("uncaughtException", (e) => {
    log.fatal({ err: e.message, stack: e.stack }, "uncaught exception");
    process.exit(70);
  });
}
