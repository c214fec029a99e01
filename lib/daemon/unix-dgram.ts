// Typed access to unix-dgram: Node's own dgram module has no Unix datagram sockets, which is what
// systemd's notify socket is. (The addon is built at install; it ships no types.)
import { createRequire } from "node:module";

export interface UnixDgramSocket {
  on(event: "error", cb: (err: Error) => void): this;
  on(event: "message", cb: (msg: Buffer) => void): this;
  bind(path: string): void;
  send(buf: Buffer, offset: number, length: number, path: string, cb?: (err?: Error | null) => void): void;
  close(): void;
}

const require = createRequire(import.meta.url);
const lib = require("unix-dgram") as { createSocket(type: "unix_dgram", listener?: (msg: Buffer) => void): UnixDgramSocket };

export function unixDgramSocket(onMessage?: (msg: Buffer) => void): UnixDgramSocket {
  return lib.createSocket("unix_dgram", onMessage);
}
