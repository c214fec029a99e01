// One serial port carrying one radar's byte stream. The port is opened, reopened with backoff when it
// fails or its device node disappears (a USB-UART adapter pulled out), and every chunk received is handed
// on untouched: framing is the codec's business, supervision the device's.
import { existsSync } from "node:fs";
import { EventEmitter } from "node:events";
import { SerialPortStream } from "@serialport/stream";
import { mainThreadBinding } from "../serial/main-thread-binding.js";
import { reconnectDelay } from "../../uplink/backoff.js";

export interface UartSettings {
  path: string;
  baudRate: number;
  parity: "none" | "even" | "odd";
  dataBits: 7 | 8;
  stopBits: 1 | 2;
  reopenMinMs: number;
  reopenMaxMs: number;
}

type PortEvents = {
  data: [chunk: Buffer];
  /** The port opened (again). */
  up: [];
  /** The port failed or vanished; it is reopened in the background. One per outage. */
  down: [reason: string];
};

export class UartPort extends EventEmitter<PortEvents> {
  private port?: SerialPortStream;
  private retry?: NodeJS.Timeout;
  private watch?: NodeJS.Timeout;
  private failures = 0;
  private stopped = false;
  private up = false;
  lastError: string | null = null;

  constructor(readonly settings: UartSettings) {
    super();
  }

  get isOpen(): boolean {
    return this.port?.isOpen === true;
  }

  start(): void {
    this.stopped = false;
    this.open();
  }

  /** Writes a query; a closed port drops it (the radar is then offline anyway and the query is re-sent later). */
  write(frame: Buffer): boolean {
    if (!this.port?.isOpen) return false;
    this.port.write(frame);
    return true;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.retry);
    clearInterval(this.watch);
    const p = this.port;
    this.port = undefined;
    if (p?.isOpen) await new Promise<void>((r) => p.close(() => r()));
  }

  private open(): void {
    if (this.stopped) return;
    const s = this.settings;
    const port = new SerialPortStream({ binding: mainThreadBinding, path: s.path, baudRate: s.baudRate, parity: s.parity, dataBits: s.dataBits, stopBits: s.stopBits, autoOpen: false });
    // Without a listener an "error" event would throw and take the daemon down.
    port.on("error", (e) => this.lost(port, e.message));
    port.on("close", () => this.lost(port, "port closed"));
    port.on("data", (chunk: Buffer) => this.emit("data", chunk));
    this.port = port;
    port.open((err) => {
      if (err) return this.lost(port, `cannot open ${s.path}: ${err.message}`);
      this.failures = 0;
      this.lastError = null;
      this.up = true;
      // serialport gives no close event when the device node vanishes; watching the path notices it.
      clearInterval(this.watch);
      this.watch = setInterval(() => {
        if (!existsSync(s.path)) this.lost(port, `${s.path} disappeared`);
      }, 1000);
      this.watch.unref();
      this.emit("up");
    });
  }

  private lost(port: SerialPortStream, reason: string): void {
    if (port !== this.port || this.stopped) return;
    this.port = undefined;
    clearInterval(this.watch);
    this.lastError = reason;
    if (port.isOpen) port.close(() => {});
    if (this.up || this.failures === 0) this.emit("down", reason);
    this.up = false;
    const wait = reconnectDelay(this.failures++, this.settings.reopenMinMs, this.settings.reopenMaxMs);
    this.retry = setTimeout(() => this.open(), wait);
    this.retry.unref();
  }
}
