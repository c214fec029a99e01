// The daemon's side of the control socket.
import { chmod, unlink } from "node:fs/promises";
import net from "node:net";
import type { Logger } from "pino";
import { MAX_REQUEST_BYTES, requestSchema, type ControlRequest, type ControlResponse, type Progress } from "./protocol.js";

/**
 * `progress` writes a progress line to the caller (streamed requests such as pair); `gone` aborts when the
 * caller has disconnected, so a long request it started (a commissioning session) can be cancelled.
 */
export type Handler = (req: ControlRequest, progress: Progress, gone: AbortSignal) => Promise<ControlResponse>;

function probe(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(path);
    s.once("connect", () => {
      s.destroy();
      resolve(true);
    });
    s.once("error", () => resolve(false));
  });
}

export class ControlServer {
  private server?: net.Server;

  constructor(
    private readonly path: string,
    private readonly handle: Handler,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    if (await probe(this.path)) throw new Error(`another anxin-hub is already answering on ${this.path}`);
    await unlink(this.path).catch(() => {});
    this.server = net.createServer((sock) => this.serve(sock));
    await new Promise<void>((resolve, reject) => {
      this.server!.once("error", reject);
      this.server!.listen(this.path, () => resolve());
    });
    // Owner and group (installers) only.
    await chmod(this.path, 0o660);
  }

  async stop(): Promise<void> {
    const s = this.server;
    this.server = undefined;
    if (s) await new Promise<void>((r) => s.close(() => r()));
    await unlink(this.path).catch(() => {});
  }

  private serve(sock: net.Socket): void {
    let buf = "";
    const gone = new AbortController();
    sock.setEncoding("utf8");
    sock.on("error", () => {});
    sock.on("close", () => gone.abort());
    sock.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST_BYTES) {
        this.reply(sock, { ok: false, error: "request too large" });
        sock.destroy();
        return;
      }
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        void this.answer(sock, line, gone.signal);
      }
    });
  }

  private async answer(sock: net.Socket, line: string, gone: AbortSignal): Promise<void> {
    let raw: unknown;
    try {
      raw = JSON.parse(line);
    } catch {
      return this.reply(sock, { ok: false, error: "request is not JSON" });
    }
    const parsed = requestSchema.safeParse(raw);
    if (!parsed.success) return this.reply(sock, { ok: false, error: "invalid request", details: parsed.error.issues.map((i) => `${i.path.join(".") || "(top)"}: ${i.message}`) });
    try {
      const progress: Progress = (p) => {
        if (!sock.destroyed) sock.write(`${JSON.stringify({ progress: p })}\n`);
      };
      this.reply(sock, await this.handle(parsed.data, progress, gone));
    } catch (e) {
      this.log.error({ err: (e as Error).message, cmd: parsed.data.cmd }, "control request failed");
      this.reply(sock, { ok: false, error: (e as Error).message });
    }
  }

  private reply(sock: net.Socket, r: ControlResponse): void {
    if (!sock.destroyed) sock.write(`${JSON.stringify(r)}\n`);
  }
}
