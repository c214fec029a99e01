// A ModbusLink over simulated devices, with the line's timing at the configured baud rate,
// so the demo and quick tests behave like a real bus without any serial hardware.
import { BusError } from "../transports/modbus/errors.js";
import type { ModbusLink, ReadFc, WriteFc } from "../transports/modbus/link.js";
import type { SimDevice, Table } from "./devices.js";

const TABLE: Record<ReadFc, Table> = { 1: "coil", 2: "di", 3: "hr", 4: "ir" };
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export class SimLink implements ModbusLink {
  private open_ = false;
  private closeCbs: Array<() => void> = [];
  private frameCbs: Array<(f: Buffer) => void> = [];
  /** Set false to make the port vanish (as a USB adapter pulled out). */
  present = true;

  constructor(
    readonly devices: Map<number, SimDevice>,
    private readonly baudRate = 9600,
  ) {}

  get isOpen(): boolean {
    return this.open_;
  }

  async open(): Promise<void> {
    if (!this.present) throw new BusError("open_failed", "simulated port not present");
    this.open_ = true;
  }

  async close(): Promise<void> {
    this.open_ = false;
  }

  unplug(): void {
    this.present = false;
    if (this.open_) {
      this.open_ = false;
      for (const cb of this.closeCbs) cb();
    }
  }

  /** Time on the wire for a request and its reply, 10 bits a byte plus two silent intervals. */
  private lineMs(reqBytes: number, replyBytes: number): number {
    const byteMs = 10_000 / this.baudRate;
    return (reqBytes + replyBytes) * byteMs + 2 * Math.max(1.75, 3.5 * byteMs);
  }

  private target(unit: number): SimDevice | undefined {
    if (!this.open_) throw new BusError("port_closed", "simulated port not open");
    const d = this.devices.get(unit);
    return d && !d.silent ? d : undefined;
  }

  async read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs: number): Promise<number[]> {
    this.frame(unit, fc);
    const d = this.target(unit);
    if (!d) {
      await sleep(timeoutMs);
      throw new BusError("timeout", "no reply in time");
    }
    const bytes = fc <= 2 ? Math.ceil(count / 8) : count * 2;
    await sleep(this.lineMs(8, 5 + bytes));
    if (!this.open_) throw new BusError("port_closed", "simulated port not open");
    return d.read(TABLE[fc], address, count);
  }

  async write(unit: number, fc: WriteFc, address: number, value: number | boolean, timeoutMs: number): Promise<void> {
    this.frame(unit, fc);
    const d = this.target(unit);
    if (!d) {
      await sleep(timeoutMs);
      throw new BusError("timeout", "no reply in time");
    }
    await sleep(this.lineMs(8, 8));
    d.write(fc === 5 ? "coil" : "hr", address, fc === 5 ? (value === true || value === 1 || value === 0xff00 ? 1 : 0) : Number(value));
  }

  async discardInput(): Promise<void> {}

  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }

  onFrameOut(cb: (frame: Buffer) => void): void {
    this.frameCbs.push(cb);
  }

  private frame(unit: number, fc: number): void {
    if (this.frameCbs.length) {
      const f = Buffer.from([unit, fc]);
      for (const cb of this.frameCbs) cb(f);
    }
  }
}
