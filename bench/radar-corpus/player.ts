// Plays corpus traces onto real serial lines: one socat PTY pair per radar, the hub opening one end, the
// player acting as the radar on the other. The player answers the hub's heartbeat and product-information
// queries like a real radar while that radar is powered, and stays silent while it is "unplugged".
// Like a real radar it never sends a reply inside a transmission: after a chunk the line paused in (a split
// write, `Chunk.continues`) replies wait for the rest of it.
//
// Two modes:
// - real time: chunks written at their wall-clock offsets; the hub runs on its own clock and interval.
// - virtual: as fast as possible. The hub's clock is a variable the player sets: to each chunk's time before
//   writing it, then it waits until the hub has read every byte written (`stats().bytesIn`), so each byte is
//   stamped with its trace time. Between chunks it runs the hub's clock tick every `tickMs` of virtual time
//   (and every `fineTickMs` in the seconds before an expected deadline). The tick granularity bounds what a
//   latency can say: an alarm due between two ticks is raised at the next one (or at the next chunk, since
//   every reading runs the rules too).
import { SerialPort } from "serialport";
import { encodeHeartbeat, seeed5359 } from "../../gateway/src/transports/uart/seeed-5359.js";
import { startPtyPair, type PtyPair } from "../../test/support/pty-pair.js";
import { productReplies, type Chunk, type RadarProfile, type Trace } from "./generate.js";

// --- PTY pairs ----------------------------------------------------------------------------------------------

export type { PtyPair };

/** `socat -d -d pty,raw,echo=0,link=A pty,raw,echo=0,link=B` (hub end A, this player's end B), waiting until both links exist. */
export function openPtyPair(hubPath: string, radarPath: string, timeoutMs = 5000): Promise<PtyPair> {
  return startPtyPair(hubPath, radarPath, timeoutMs, { debug: true, pollMs: 10 });
}

// --- the radar's end ----------------------------------------------------------------------------------------

/** One radar's side of its line: writes the trace's bytes, answers the hub's queries while powered. */
export class RadarEnd {
  powered = true;
  /** bytes written to the line (trace chunks and replies) */
  written = 0;
  heartbeatsAnswered = 0;
  /** frames written in answer to the hub's queries (heartbeats, product information) */
  repliesWritten = 0;
  queriesIgnored = 0;
  /** the hub's queries heard on the line (answered or not) */
  queriesHeard = 0;
  /** replies held back while a split chunk's transmission is unfinished (see `Chunk.continues`) */
  private held: Buffer[] = [];
  private midChunk = false;
  private port: SerialPort;
  private readonly parser = seeed5359.createParser();
  private readonly product: ReturnType<typeof productReplies>;
  private heardFromHub = false;
  private heardWaiters: Array<() => void> = [];

  constructor(
    readonly id: string,
    path: string,
    profile: RadarProfile,
  ) {
    this.product = productReplies(profile);
    this.port = new SerialPort({ path, baudRate: 115200, autoOpen: false });
    this.port.on("error", () => {});
    this.port.on("data", (chunk: Buffer) => this.onQuery(chunk));
  }

  open(): Promise<void> {
    return new Promise((resolve, reject) => this.port.open((err) => (err ? reject(err) : resolve())));
  }

  private send(bytes: Buffer): void {
    this.written += bytes.length;
    this.port.write(bytes);
  }

  /**
   * One chunk of the trace. After a chunk the line paused inside (`continues`), replies wait for the rest of
   * that transmission, as on a real radar: written between the halves, a reply would break the frame the
   * split runs through, and the hub would rightly not decode a frame the trace counts as intact.
   */
  writeChunk(c: Pick<Chunk, "bytes" | "continues">): void {
    this.send(c.bytes);
    this.midChunk = c.continues === true;
    if (!this.midChunk) for (const r of this.held.splice(0)) this.reply(r);
  }

  private reply(bytes: Buffer): void {
    if (this.midChunk) {
      this.held.push(bytes);
      return;
    }
    this.send(bytes);
    this.repliesWritten++;
  }

  /** Resolves once the hub has written anything (its port is open: it asks for a heartbeat on opening). */
  heard(timeoutMs: number): Promise<boolean> {
    if (this.heardFromHub) return Promise.resolve(true);
    return new Promise((resolve) => {
      const t = setTimeout(() => resolve(false), timeoutMs);
      this.heardWaiters.push(() => {
        clearTimeout(t);
        resolve(true);
      });
    });
  }

  private onQuery(chunk: Buffer): void {
    if (!this.heardFromHub) {
      this.heardFromHub = true;
      for (const w of this.heardWaiters.splice(0)) w();
    }
    // Answered by ctrl/cmd whatever the codec calls the frame: 01/01 is the heartbeat query, 02/A1..A4 ask
    // for the product information (the hub uses the model query as its liveness query).
    for (const f of this.parser.push(chunk)) {
      if (f.kind === "report" || f.kind === "product") continue;
      this.queriesHeard++;
      if (!this.powered) {
        this.queriesIgnored++;
        continue;
      }
      if (f.ctrl === 0x01 && f.cmd === 0x01) {
        this.reply(encodeHeartbeat());
        this.heartbeatsAnswered++;
      } else if (f.ctrl === 0x02) {
        const field = ({ 0xa1: "model", 0xa2: "id", 0xa3: "hardware", 0xa4: "firmware" } as const)[f.cmd as 0xa1 | 0xa2 | 0xa3 | 0xa4];
        if (field) {
          this.reply(this.product[field]);
        }
      }
    }
  }

  close(): Promise<void> {
    if (!this.port.isOpen) return Promise.resolve();
    return new Promise((r) => this.port.close(() => r()));
  }
}

// --- playing ------------------------------------------------------------------------------------------------

/** What the player needs of the hub in virtual mode. */
export interface VirtualHub {
  /** sets the hub's clock (epoch ms) */
  setNow(t: number): void;
  /** one clock tick of every rule and the radars' supervision at the current time */
  tick(): void;
  /** bytes the hub's radar `id` has read from its line */
  bytesIn(id: string): number;
  /** queries the hub's radar `id` has written to its line */
  queriesSent(id: string): number;
}

export interface PlayOptions {
  /** virtual ms between clock ticks; default 1000 */
  tickMs?: number;
  /** virtual ms between ticks in the last seconds before an expected deadline; default 250 */
  fineTickMs?: number;
  /** wall ms to wait for the hub to read what was written before giving up on those bytes; default 3000 */
  catchUpTimeoutMs?: number;
}

export interface PlayStats {
  chunks: number;
  bytes: number;
  ticks: number;
  /** bytes the hub never read (a catch-up that timed out): the trace is not trustworthy then */
  unread: number;
  catchUpTimeouts: number;
  /** queries the hub sent that never reached the player by the end (their answers are missing): not trustworthy either */
  queriesUnheard: number;
  wallMs: number;
}

const immediate = () => new Promise<void>((r) => setImmediate(r));

/** Intervals of trace time where ticks are fine: from 3 s before each expected deadline to its late limit. */
function fineWindows(trace: Trace): Array<[number, number]> {
  return trace.expect.map((e) => [Math.max(0, e.by - 3000 - 2000), e.by] as [number, number]);
}

/**
 * Virtual mode: the whole trace, as fast as the hub reads. Power changes switch a radar's query answers;
 * the chunks already reflect them (nothing is rendered while a radar is off).
 */
export async function playVirtual(trace: Trace, ends: Map<string, RadarEnd>, hub: VirtualHub, o: PlayOptions = {}): Promise<PlayStats> {
  const tickMs = o.tickMs ?? 1000;
  const fine = o.fineTickMs ?? 250;
  const timeout = o.catchUpTimeoutMs ?? 3000;
  const windows = fineWindows(trace);
  const started = Date.now();
  const stats: PlayStats = { chunks: 0, bytes: 0, ticks: 0, unread: 0, catchUpTimeouts: 0, queriesUnheard: 0, wallMs: 0 };
  // Bytes the hub is known to have lost (after a timed-out catch-up), so later waits do not wait for them.
  const lost = new Map<string, number>();
  const power = [...trace.power];
  let pi = 0;
  let nextTick = tickMs;

  const stepAfter = (t: number) => (windows.some(([a, b]) => t >= a && t < b) ? fine : tickMs);
  const setPower = (upTo: number) => {
    while (pi < power.length && power[pi]!.at <= upTo) {
      const p = power[pi++]!;
      const e = ends.get(p.radar);
      if (e) e.powered = p.on;
    }
  };
  const catchUp = async (id: string, e: RadarEnd) => {
    const want = () => e.written - (lost.get(id) ?? 0);
    if (hub.bytesIn(id) >= want()) return;
    const until = Date.now() + timeout;
    while (hub.bytesIn(id) < want()) {
      if (Date.now() > until) {
        const missing = want() - hub.bytesIn(id);
        lost.set(id, (lost.get(id) ?? 0) + missing);
        stats.unread += missing;
        stats.catchUpTimeouts++;
        return;
      }
      await immediate();
    }
  };
  const tickUntil = async (t: number) => {
    while (nextTick <= t) {
      setPower(nextTick);
      hub.setNow(trace.startAt + nextTick);
      hub.tick();
      stats.ticks++;
      nextTick += stepAfter(nextTick);
      // a tick may have sent a heartbeat query; any answer is read at the next catch-up
    }
  };

  for (const c of trace.chunks) {
    await tickUntil(c.at);
    setPower(c.at);
    hub.setNow(trace.startAt + c.at);
    const e = ends.get(c.radar);
    if (!e) throw new Error(`trace ${trace.name}: chunk for unknown radar ${c.radar}`);
    e.writeChunk(c);
    stats.chunks++;
    stats.bytes += c.bytes.length;
    await catchUp(c.radar, e);
  }
  await tickUntil(trace.durationMs);
  // Answers to queries sent by the last ticks (or by the last chunks: the hub asks again when a radar comes
  // back). A query still on its way has no answer written yet, so first hear every query the hub sent, then
  // wait for the answers to be read: otherwise an answer written after this point counts in `repliesWritten`
  // but may never reach the hub's counters.
  for (const [id, e] of ends) {
    const until = Date.now() + timeout;
    while (e.queriesHeard < hub.queriesSent(id) && Date.now() <= until) await immediate();
    if (e.queriesHeard < hub.queriesSent(id)) stats.queriesUnheard += hub.queriesSent(id) - e.queriesHeard;
    await catchUp(id, e);
  }
  stats.wallMs = Date.now() - started;
  return stats;
}

/**
 * Real time: chunks at their offsets from now on the wall clock; the hub's own interval ticks its rules.
 * Returns the wall-clock epoch the trace started at (trace time 0).
 */
export async function playRealTime(trace: Trace, ends: Map<string, RadarEnd>, o: { onStart?: (t0: number) => void } = {}): Promise<PlayStats & { t0: number }> {
  const t0 = Date.now();
  o.onStart?.(t0);
  const stats: PlayStats = { chunks: 0, bytes: 0, ticks: 0, unread: 0, catchUpTimeouts: 0, queriesUnheard: 0, wallMs: 0 };
  const power = [...trace.power];
  let pi = 0;
  const setPower = (upTo: number) => {
    while (pi < power.length && power[pi]!.at <= upTo) {
      const p = power[pi++]!;
      const e = ends.get(p.radar);
      if (e) e.powered = p.on;
    }
  };
  for (const c of trace.chunks) {
    const wait = t0 + c.at - Date.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    setPower(c.at);
    ends.get(c.radar)?.writeChunk(c);
    stats.chunks++;
    stats.bytes += c.bytes.length;
  }
  const rest = t0 + trace.durationMs - Date.now();
  if (rest > 0) await new Promise((r) => setTimeout(r, rest));
  setPower(trace.durationMs);
  stats.wallMs = Date.now() - t0;
  return { ...stats, t0 };
}
