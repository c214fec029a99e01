// Typed access to unix-dgram: Node's own dgram module has no Unix datagram sockets, which is what
// systemd's notify socket is. The addon is an optional dependency (it compiles at install, which needs a
// compiler): loaded only when a notifier needs it, and a hub without it still runs, without the watchdog.
import { createRequire } from "node:module";

export interface UnixDgramSocket {
  on(event: "error", cb: (err: Error) => void): this;
  on(event: "message", cb: (msg: Buffer) => void): this;
  bind(path: string): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error | null) => void): void;
  close(): void;
}

type UnixDgramLib = { createSocket(type: "unix_dgram", listener?: (msg: Buffer) => void): UnixDgramSocket };

const require = createRequire(import.meta.url);
let lib: UnixDgramLib | null | undefined;
let loadError = "";

/** True when the addon is installed and loads; the reason it does not is in `unixDgramMissing()`. */
export function unixDgramAvailable(): boolean {
  if (lib === undefined) {
    try {
      lib = require("unix-dgram") as UnixDgramLib;
    } catch (e) {
      lib = null;
      loadError = (e as Error).message.split("\n")[0] ?? "cannot load";
    }
  }
  return lib !== null;
}

export function unixDgramMissing(): string {
  return unixDgramAvailable() ? "" : `the optional package unix-dgram is not available (${loadError})`;
}

export function unixDgramSocket(onMessage?: (msg: Buffer) => void): UnixDgramSocket {
  if (!unixDgramAvailable() || !lib) throw new Error(unixDgramMissing());
  return lib.createSocket("unix_dgram", onMessage);
}
