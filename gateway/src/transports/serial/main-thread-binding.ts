// Serial I/O done on the event loop's own thread. serialport's Linux binding reads, writes and flushes
// through libuv's thread pool: the four threads Node also uses for file I/O and DNS. So a valve command
// could wait behind a slow SD card, and each poll of a detector cost four hand-offs between threads (most
// of an idle hub's CPU on a slow core). The port is open non-blocking, so a read or write here returns at
// once with what the kernel has or takes, or EAGAIN; then we wait for the kernel's readiness signal
// (serialport's poller: an epoll watch on this thread). Opening, closing, settings and drain stay as
// serialport does them: they are rare and not on the safety path.
import { readSync, writeSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import {
  LinuxBinding,
  type BindingInterface,
  type BindingPortInterface,
  type LinuxOpenOptions,
  type LinuxPortBinding,
  type LinuxSetOptions,
  type UpdateOptions,
} from "@serialport/bindings-cpp";

type Errno = Error & { code?: string };

const RETRY = new Set(["EAGAIN", "EWOULDBLOCK", "EINTR"]);
/** Nothing there (or nothing taken) right now, or a signal: try again, not a fault. */
const retryable = (err: Errno) => err.code !== undefined && RETRY.has(err.code);
/** Enough to empty the kernel's receive buffer many times over; a line that refills it faster is not ours to drain. */
const MAX_DISCARD_READS = 64;
const scratch = Buffer.alloc(4096);
const MAX_WRITE_WAIT_MS = 8;
// Taken before anything can route another copy of the binding here (see routeThroughMainThread).
const openLinux = LinuxBinding.open.bind(LinuxBinding);

// serialport's stream closes the port on any read error but a `canceled` one (and says it was disconnected).
const hungUp = () => new Error("serial line hung up");

export class MainThreadPort implements BindingPortInterface {
  private writing: Promise<void> | null = null;

  constructor(private readonly inner: LinuxPortBinding) {}

  get openOptions(): LinuxPortBinding["openOptions"] {
    return this.inner.openOptions;
  }

  get isOpen(): boolean {
    return this.inner.isOpen;
  }

  /** Resolves with at least one byte; rejects with serialport's `canceled` error when the port is closed meanwhile. */
  async read(buffer: Buffer, offset: number, length: number): Promise<{ buffer: Buffer; bytesRead: number }> {
    if (buffer.length < offset + length) throw new RangeError("buffer is too small");
    for (;;) {
      const fd = this.fd();
      try {
        const bytesRead = readSync(fd, buffer, offset, length, null);
        // On a terminal opened with VMIN 1, 0 means hung up; serialport would read again forever.
        if (bytesRead === 0) throw hungUp();
        return { buffer, bytesRead };
      } catch (e) {
        await this.readableOrThrow(e as Errno);
      }
    }
  }

  /** Resolves once every byte is with the kernel. */
  write(buffer: Buffer): Promise<void> {
    const op = this.writeAll(buffer).finally(() => {
      if (this.writing === op) this.writing = null;
    });
    this.writing = op;
    return op;
  }

  /**
   * Drops what was received and not yet read (a late or partial reply). Output is left alone: nothing is
   * queued behind a request, and cutting one short mid-frame would garble the next.
   */
  async flush(): Promise<void> {
    const fd = this.fd();
    for (let i = 0; i < MAX_DISCARD_READS; i++) {
      try {
        if (readSync(fd, scratch, 0, scratch.length, null) === 0) throw hungUp();
      } catch (e) {
        const err = e as Errno;
        if (retryable(err)) return;
        throw err;
      }
    }
  }

  async drain(): Promise<void> {
    await this.writing;
    await this.inner.drain();
  }

  close(): Promise<void> {
    return this.inner.close();
  }

  update(options: UpdateOptions): Promise<void> {
    return this.inner.update(options);
  }

  set(options: LinuxSetOptions): ReturnType<LinuxPortBinding["set"]> {
    return this.inner.set(options);
  }

  get(): ReturnType<LinuxPortBinding["get"]> {
    return this.inner.get();
  }

  getBaudRate(): ReturnType<LinuxPortBinding["getBaudRate"]> {
    return this.inner.getBaudRate();
  }

  private async writeAll(buffer: Buffer): Promise<void> {
    let done = 0;
    for (let waits = 0; done < buffer.length; ) {
      const fd = this.fd();
      try {
        done += writeSync(fd, buffer, done, buffer.length - done);
        waits = 0;
      } catch (e) {
        const err = e as Errno;
        if (!retryable(err)) throw err;
        // The kernel's output buffer is full (bulk data; a request frame never fills it). Not the poller's
        // writable signal: its native side watches one direction at a time, so waiting for writable would
        // stop the reads meanwhile, and two ports writing to each other would wait forever.
        await sleep(Math.min(2 ** waits++, MAX_WRITE_WAIT_MS));
      }
    }
  }

  private fd(): number {
    const fd = this.inner.fd;
    if (fd === null) throw Object.assign(new Error("Port is not open"), { canceled: true });
    return fd;
  }

  /** EAGAIN and friends wait for the poller (whose error, `canceled` on close, is passed on); anything else is thrown. */
  private async readableOrThrow(err: Errno): Promise<void> {
    if (!retryable(err)) throw err;
    await new Promise<void>((resolve, reject) => this.inner.poller.once("readable", (e) => (e ? reject(e) : resolve())));
  }
}

/**
 * serialport's binding for Linux with reads, writes and input flushes on the main thread. Pass it as the
 * `binding` option of `SerialPortStream` (or of modbus-serial's `connectRTUBuffered`, which hands it through).
 */
export const mainThreadBinding: BindingInterface<MainThreadPort, LinuxOpenOptions> = {
  list: () => LinuxBinding.list(),
  open: async (options) => new MainThreadPort(await openLinux(options)),
};
