// The modem's serial port as an AtLink. USB modules expose several ports; the AT one is chosen by the caller
// (Quectel: ttyUSB2, SIMCom SIM7600: ttyUSB2 as well on Linux's option driver). Flow control stays off:
// with AT+CSCS="GSM" the byte 0x11 is `_`, which XON/XOFF would swallow (TS 27.007 §5.5 warns of this).
import { SerialPortStream } from "@serialport/stream";
import { mainThreadBinding } from "../transports/serial/main-thread-binding.js";
import type { AtLink } from "./at-channel.js";

export async function openSerialLink(path: string, baudRate = 115200): Promise<AtLink> {
  const port = new SerialPortStream({ binding: mainThreadBinding, path, baudRate, autoOpen: false, xon: false, xoff: false, rtscts: false });
  await new Promise<void>((resolve, reject) => port.open((err) => (err ? reject(err) : resolve())));
  // Without a listener an "error" event would throw; failures show as command timeouts instead.
  port.on("error", () => {});
  return {
    write: (data) => void port.write(data),
    onData: (listener) => void port.on("data", listener),
    close: () => new Promise<void>((resolve) => (port.isOpen ? port.close(() => resolve()) : resolve())),
  };
}
