// A link is the thing one bus talks through: a real serial port (modbus-serial) or the simulator.
// The bus above it owns queueing, timing and recovery; a link only moves one request at a time.
import { existsSync } from "node:fs";
import modbusSerial from "modbus-serial";
import { BusError, classify } from "./errors.js";
import { mainThreadBinding } from "../serial/main-thread-binding.js";

// The package's typings describe its CommonJS export as a namespace; at run time the default
// export is the client class itself.
const ModbusRTU = modbusSerial as unknown as typeof modbusSerial.default;
type ModbusRTU = InstanceType<typeof modbusSerial.default>;

export type ReadFc = 1 | 2 | 3 | 4;
export type WriteFc = 5 | 6;

export interface SerialSettings {
  baudRate: number;
  parity: "none" | "even" | "odd";
  dataBits: 7 | 8;
  stopBits: 1 | 2;
}

export interface ModbusLink {
  open(): Promise<void>;
  close(): Promise<void>;
  readonly isOpen: boolean;
  /** Read `count` coils/inputs (booleans as 0/1) or registers. */
  read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs: number): Promise<number[]>;
  write(unit: number, fc: WriteFc, address: number, value: number | boolean, timeoutMs: number): Promise<void>;
  /** Drop whatever was received but not yet consumed (a late or partial reply). */
  discardInput(): Promise<void>;
  /** Called once when the port goes away under us. */
  onClose(cb: () => void): void;
  /** Called with every request frame as it is handed to the port (the moment a command is "on the bus"). */
  onFrameOut(cb: (frame: Buffer) => void): void;
}

interface BufferedPortInternals {
  _buffer: Buffer;
  _client?: { isOpen: boolean; flush(cb: (err?: Error | null) => void): void };
  write(data: Buffer): void;
}

export class SerialLink implements ModbusLink {
  private client?: ModbusRTU;
  private watch?: NodeJS.Timeout;
  private closeCbs: Array<() => void> = [];
  private frameCbs: Array<(f: Buffer) => void> = [];

  constructor(
    readonly path: string,
    private readonly serial: SerialSettings,
  ) {}

  get isOpen(): boolean {
    return this.client?.isOpen === true;
  }

  async open(): Promise<void> {
    const client = new ModbusRTU();
    // Without a listener an "error" event would throw and take the daemon down.
    client.on("error", () => {});
    try {
      // modbus-serial hands its options to serialport, the binding included (its typings leave it out).
      const options = { ...this.serial, binding: mainThreadBinding };
      await client.connectRTUBuffered(this.path, options);
    } catch (e) {
      throw new BusError("open_failed", `cannot open ${this.path}: ${classify(e).message}`);
    }
    client.on("close", () => this.lost(client));
    // serialport gives no close event when the device node vanishes (the adapter is pulled out):
    // its reader spins until the next write fails. Watching the path notices within a second.
    this.watch = setInterval(() => {
      if (!existsSync(this.path)) this.lost(client);
    }, 1000);
    this.watch.unref();
    const port = this.internals(client);
    if (port) {
      const write = port.write.bind(port);
      port.write = (data: Buffer) => {
        for (const cb of this.frameCbs) cb(data);
        write(data);
      };
    }
    this.client = client;
    await this.discardInput();
  }

  async close(): Promise<void> {
    clearInterval(this.watch);
    const c = this.client;
    this.client = undefined;
    if (c?.isOpen) await new Promise<void>((r) => c.close(() => r()));
  }

  private lost(client: ModbusRTU): void {
    if (this.client !== client) return;
    clearInterval(this.watch);
    this.client = undefined;
    if (client.isOpen) client.close(() => {});
    for (const cb of this.closeCbs) cb();
  }

  private internals(c: ModbusRTU | undefined): BufferedPortInternals | undefined {
    // RTUBufferedPort internals are private in modbus-serial 8.0.25: the version is pinned exactly.
    return (c as unknown as { _port?: BufferedPortInternals } | undefined)?._port;
  }

  private live(): ModbusRTU {
    if (!this.client?.isOpen) throw new BusError("port_closed", `serial port ${this.path} not open`);
    return this.client;
  }

  async read(unit: number, fc: ReadFc, address: number, count: number, timeoutMs: number): Promise<number[]> {
    const c = this.live();
    c.setID(unit);
    c.setTimeout(timeoutMs);
    try {
      const r =
        fc === 1 ? await c.readCoils(address, count)
        : fc === 2 ? await c.readDiscreteInputs(address, count)
        : fc === 3 ? await c.readHoldingRegisters(address, count)
        : await c.readInputRegisters(address, count);
      const data = (r.data as Array<number | boolean>).slice(0, count).map((v) => (typeof v === "boolean" ? (v ? 1 : 0) : v));
      if (data.length !== count) throw new BusError("framing", `expected ${count} values, got ${data.length}`);
      return data;
    } catch (e) {
      throw classify(e);
    }
  }

  async write(unit: number, fc: WriteFc, address: number, value: number | boolean, timeoutMs: number): Promise<void> {
    const c = this.live();
    c.setID(unit);
    c.setTimeout(timeoutMs);
    try {
      if (fc === 5) await c.writeCoil(address, value === true || value === 1 || value === 0xff00);
      else await c.writeRegister(address, Number(value));
    } catch (e) {
      throw classify(e);
    }
  }

  async discardInput(): Promise<void> {
    const port = this.internals(this.client);
    if (!port) return;
    port._buffer = Buffer.alloc(0);
    const serial = port._client;
    if (serial?.isOpen) await new Promise<void>((r) => serial.flush(() => r()));
  }

  onClose(cb: () => void): void {
    this.closeCbs.push(cb);
  }

  onFrameOut(cb: (frame: Buffer) => void): void {
    this.frameCbs.push(cb);
  }
}
