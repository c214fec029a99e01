// The CLI's side of the control socket.
import net from "node:net";
import type { ControlRequest, ControlResponse } from "./protocol.js";

export async function callDaemon(path: string, req: ControlRequest, timeoutMs = 10_000): Promise<ControlResponse> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(path);
    let buf = "";
    const timer = setTimeout(() => {
      sock.destroy();
      reject(new Error(`no answer from anxin-hub on ${path} within ${timeoutMs} ms`));
    }, timeoutMs);
    sock.setEncoding("utf8");
    sock.once("connect", () => sock.write(`${JSON.stringify(req)}\n`));
    sock.on("data", (c: string) => {
      buf += c;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      clearTimeout(timer);
      sock.end();
      try {
        resolve(JSON.parse(buf.slice(0, nl)) as ControlResponse);
      } catch {
        reject(new Error("anxin-hub sent an answer that is not JSON"));
      }
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
