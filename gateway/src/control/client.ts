// The CLI's side of the control socket.
import net from "node:net";
import type { ControlRequestInput, ControlResponse } from "./protocol.js";

/** Like callDaemon, for requests that stream progress lines before their answer; the timeout is reset by each line. */
export async function streamDaemon(path: string, req: ControlRequestInput, onProgress: (p: unknown) => void, idleTimeoutMs = 30_000): Promise<ControlResponse> {
  return callDaemon(path, req, idleTimeoutMs, onProgress);
}

export async function callDaemon(path: string, req: ControlRequestInput, timeoutMs = 10_000, onProgress?: (p: unknown) => void): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = "";
    const expire = () =>
      setTimeout(() => {
        sock.destroy();
        reject(new Error(`no answer from anxin-hub on ${path} within ${timeoutMs} ms`));
      }, timeoutMs);
    let timer = expire();
    sock.setEncoding("utf8");
    sock.once("connect", () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on("data", (c: string) => {
      buf += c;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let msg: unknown;
        try {
          msg = JSON.parse(line);
        } catch {
          clearTimeout(timer);
          sock.destroy();
          reject(new Error("anxin-hub sent an answer that is not JSON"));
          return;
        }
        if (msg && typeof msg === "object" && "progress" in msg && !("ok" in msg)) {
          clearTimeout(timer);
          timer = expire();
          onProgress?.(msg.progress);
          continue;
        }
        clearTimeout(timer);
        sock.end();
        resolve(msg as ControlResponse);
        return;
      }
    });
    // The daemon stopping mid-request (a crash, a restart) closes the socket: say so now, not at the timeout.
    // (A settled promise ignores this; an error is followed by close too and has already rejected.)
    sock.once("close", () => {
      clearTimeout(timer);
      reject(new Error(`anxin-hub on ${path} closed the connection without answering: it stopped or restarted (see its log)`));
    });
    sock.once("error", (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        e.code === "ENOENT" ? "no control socket there: is anxin-hub running, and is this the right --socket/--config?"
        : e.code === "EACCES" ? "permission denied: run as the anxin user or a member of its group"
        : e.code === "ECONNREFUSED" ? "nothing is listening: anxin-hub is not running"
        : e.message;
      reject(new Error(`cannot reach anxin-hub on ${path}: ${why}`));
    });
  });
}
