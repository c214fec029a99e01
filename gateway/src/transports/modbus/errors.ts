// modbus-serial rejects with objects that are often not `instanceof Error` (timeouts, closed port),
// so every failure is classified here by errno, modbusCode and message into one error type.
export type BusErrorKind = "timeout" | "crc" | "exception" | "framing" | "port_closed" | "open_failed" | "unknown";

export class BusError extends Error {
  constructor(
    readonly kind: BusErrorKind,
    message: string,
    readonly code?: number,
  ) {
    super(message);
    this.name = "BusError";
  }
}

/** Errors after which stray bytes may still be on the line: wait for quiet, then discard them. */
export const LINE_DIRTY: ReadonlySet<BusErrorKind> = new Set(["timeout", "crc", "framing"]);

export function classify(e: unknown): BusError {
  if (e instanceof BusError) return e;
  const x = (e ?? {}) as { errno?: string; name?: string; message?: string | null; modbusCode?: number };
  const msg = String(x.message ?? "");
  if (x.errno === "ETIMEDOUT" || x.name === "TransactionTimedOutError") return new BusError("timeout", "no reply in time");
  if (x.name === "PortNotOpenError" || x.name === "SerialPortError") return new BusError("port_closed", "serial port not open");
  if (typeof x.modbusCode === "number") return new BusError("exception", msg || `Modbus exception ${x.modbusCode}`, x.modbusCode);
  if (/CRC error/i.test(msg)) return new BusError("crc", "CRC error in reply");
  if (/Data length error|Unexpected data error|Invalid|length/i.test(msg)) return new BusError("framing", msg);
  if (/No such file|cannot open|ENOENT|EACCES|Permission denied/i.test(msg)) return new BusError("open_failed", msg);
  return new BusError("unknown", msg || String(e));
}
