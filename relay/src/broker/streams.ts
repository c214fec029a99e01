// Stream plumbing for the embedded broker: a guard that drops a connection as soon as an MQTT packet
// header announces more than we accept, and an in-process pipe for the relay's own session.
import { Duplex } from "node:stream";
import type { Socket } from "node:net";

/**
 * Sits between a socket and aedes. aedes has no packet size limit: its parser buffers a whole packet
 * (up to 256 MB) before anything can look at it, even before CONNECT is authenticated. This reads only
 * the fixed headers (type byte + remaining-length varint) and destroys the connection when a packet is
 * announced larger than `maxPacketBytes`, before its body arrives.
 */
export class PacketSizeGuard extends Duplex {
  private atHeader = true;
  /** Bytes of the current packet's body still to pass. */
  private body = 0;
  private lenValue = 0;
  private lenShift = 0;
  private lenBytes = -1; // -1: waiting for the type byte
  private corked = false;

  constructor(
    readonly socket: Socket,
    private readonly maxPacketBytes: number,
    private readonly onTooLarge: (announced: number) => void,
  ) {
    super({ allowHalfOpen: false });
    socket.on("data", (chunk: Buffer) => {
      if (!this.scan(chunk)) return;
      if (!this.push(chunk)) socket.pause();
    });
    socket.pause();
    socket.on("end", () => this.push(null));
    socket.on("error", (err) => this.destroy(err));
    socket.on("close", () => this.destroy());
  }

  get remoteAddress(): string | undefined {
    return this.socket.remoteAddress;
  }

  /** False when the connection was dropped. */
  private scan(chunk: Buffer): boolean {
    let i = 0;
    while (i < chunk.length) {
      if (!this.atHeader) {
        const n = Math.min(this.body, chunk.length - i);
        this.body -= n;
        i += n;
        if (this.body === 0) this.atHeader = true;
        continue;
      }
      const b = chunk[i++]!;
      if (this.lenBytes < 0) {
        this.lenBytes = 0;
        this.lenValue = 0;
        this.lenShift = 0;
        continue;
      }
      this.lenValue += (b & 0x7f) * 2 ** this.lenShift;
      this.lenShift += 7;
      this.lenBytes++;
      if (b & 0x80) {
        if (this.lenBytes >= 4) return this.cutOff(Number.POSITIVE_INFINITY); // malformed varint
        continue;
      }
      if (this.lenValue > this.maxPacketBytes) return this.cutOff(this.lenValue);
      this.body = this.lenValue;
      this.lenBytes = -1;
      this.atHeader = this.body === 0;
    }
    return true;
  }

  private cutOff(announced: number): false {
    this.onTooLarge(announced);
    this.socket.destroy();
    this.destroy();
    return false;
  }

  override _read(): void {
    this.socket.resume();
  }

  override _write(chunk: Buffer, encoding: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.socket.destroyed) return cb(new Error("connection closed"));
    // The broker answers every QoS 1 publish with its own PUBACK; a hub draining its journal gets hundreds
    // per read. Corked until the end of this turn of the event loop, they leave in one write, not one
    // system call each. The next chunk is taken at once (the socket buffers it) unless the socket is full.
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      setImmediate(() => this.flush());
    }
    if (this.socket.write(chunk, encoding)) cb();
    else this.socket.once("drain", () => cb());
  }

  /** Lets corked writes go; before an end or a destroy too, or a refusal (CONNACK) would never leave. */
  private flush(): void {
    if (!this.corked) return;
    this.corked = false;
    this.socket.uncork();
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.flush();
    this.socket.end(() => cb());
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.flush();
    this.socket.destroy();
    cb(err);
  }
}

/** One end of an in-process byte pipe; destroying or ending one end is seen by the other, like a socket. */
class PipeEnd extends Duplex {
  peer!: PipeEnd;
  private pendingWrite: (() => void) | null = null;

  override _read(): void {
    const release = this.peer.pendingWrite;
    if (release) {
      this.peer.pendingWrite = null;
      release();
    }
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.peer.destroyed) return cb(new Error("pipe closed"));
    if (this.peer.push(chunk)) cb();
    else this.pendingWrite = () => cb();
  }

  override _final(cb: (err?: Error | null) => void): void {
    if (!this.peer.destroyed) this.peer.push(null);
    cb();
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    const release = this.pendingWrite;
    this.pendingWrite = null;
    release?.();
    const peer = this.peer;
    if (!peer.destroyed) {
      peer.push(null);
      setImmediate(() => peer.destroy());
    }
    cb(err);
  }
}

/** Two connected duplex streams (node:stream's duplexPair needs Node 20.17; we support 20.11). */
export function pipePair(): [Duplex, Duplex] {
  const a = new PipeEnd({ allowHalfOpen: false });
  const b = new PipeEnd({ allowHalfOpen: false });
  a.peer = b;
  b.peer = a;
  return [a, b];
}
