// Plays pre-rendered prompts on the hub's speaker with ALSA's `aplay`, one at a time, from the queue's rules
// (queue.ts). It is told what to say and never waits on anyone: `say` returns at once, so a safety action that
// asks for a prompt is never delayed by audio. A missing file is logged once and skipped. A siren always wins:
// nothing starts while one sounds, and a prompt under way when a siren starts is cut off and said again after.
// The prompt files are looked for once at start and a found one is not looked for again: the look goes
// through libuv's thread pool, where DNS lookups on a dead network can keep a spoken warning waiting.
import { spawn, type ChildProcess } from "node:child_process";
import { access } from "node:fs/promises";
import path from "node:path";
import type { Logger } from "pino";
import { PROMPT_IDS, promptFile, type Language, type PromptId } from "./prompts.js";
import { PromptQueue, type Queued } from "./queue.js";

export interface Played {
  id: PromptId;
  cause: string;
  /** When it started playing (or was found missing) and when it ended. */
  startedAt: number;
  at: number;
  /** aplay ran to the end with status 0. */
  ok: boolean;
  /** Why not: `missing` (no rendered file), `interrupted` (a siren), `failed: …`. */
  problem?: string;
}

export interface PlayerOptions {
  /** The prompts folder (voice.promptsDir, resolved). */
  dir: string;
  language: Language;
  /** ALSA device (`aplay -D`). */
  device: string;
  /** Whether a siren sounds now (the siren arbiter's mode or a siren test). */
  sirenOn: () => boolean;
  /** Whether it is quiet hours now. */
  quiet: () => boolean;
  log: Logger;
  now?: () => number;
  /** The player program; default `aplay`. */
  program?: string;
  /** How often waiting prompts (behind a siren, in quiet hours) and a playing one (a siren starting) are looked at. */
  checkMs?: number;
}

/** A prompt is a few seconds long; a player stuck longer than this is stopped. */
const PLAY_TIMEOUT_MS = 30_000;
/** The last prompts said (or tried), for status and tests. */
const KEEP_PLAYED = 100;

export class Player {
  private readonly queue = new PromptQueue();
  private readonly now: () => number;
  private current: { q: Queued; child: ChildProcess; interrupted: boolean } | null = null;
  private starting = false;
  private timer: NodeJS.Timeout | null = null;
  private readonly missing = new Set<string>();
  private readonly found = new Set<string>();
  /** Resolves once every prompt file has been looked for. */
  readonly ready: Promise<void>;
  private stopped = false;
  readonly played: Played[] = [];
  /** Told after each prompt (tests, the journal's audit if wanted). */
  onPlayed?: (p: Played) => void;

  constructor(private readonly o: PlayerOptions) {
    this.now = o.now ?? Date.now;
    this.ready = Promise.all(PROMPT_IDS.map((id) => this.exists(this.fileOf(id)))).then(() => undefined);
  }

  /** Asks for a prompt; returns at once. */
  say(id: PromptId, cause: string): void {
    if (this.stopped) return;
    // The same prompt being said right now is not queued again.
    if (this.current?.q.id === id && !this.current.interrupted) return;
    this.queue.push({ id, at: this.now(), cause });
    this.pump();
  }

  /** Prompts waiting (status). */
  get waiting(): number {
    return this.queue.size;
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = null;
    const c = this.current;
    if (c && c.child.exitCode === null) {
      const gone = new Promise<void>((r) => c.child.once("close", () => r()));
      c.child.kill("SIGTERM");
      await gone;
    }
  }

  private pump(): void {
    if (this.stopped || this.current || this.starting) return;
    for (const gone of this.queue.expire(this.now())) this.o.log.info({ prompt: gone.id, cause: gone.cause }, "voice: prompt no longer worth saying; dropped");
    const next = this.queue.take({ now: this.now(), sirenOn: this.o.sirenOn(), quiet: this.o.quiet() });
    if (!next) {
      this.watch(this.queue.size > 0);
      return;
    }
    this.starting = true;
    void this.start(next).finally(() => {
      this.starting = false;
      if (!this.current) this.pump();
    });
  }

  private fileOf(id: PromptId): string {
    return path.join(this.o.dir, promptFile(this.o.language, id));
  }

  /** A file found once is taken as there (one deleted since makes aplay fail, which is reported); a missing one is looked for again. */
  private async exists(file: string): Promise<boolean> {
    if (this.found.has(file)) return true;
    try {
      await access(file);
      this.found.add(file);
      return true;
    } catch {
      return false;
    }
  }

  /** Keeps looking while something waits or plays: a siren may stop (or start), quiet hours may end. */
  private watch(on: boolean): void {
    if (on && !this.timer) {
      this.timer = setInterval(() => this.tick(), this.o.checkMs ?? 250);
      this.timer.unref();
    } else if (!on && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  private tick(): void {
    const c = this.current;
    if (c) {
      if (!c.interrupted && this.o.sirenOn()) {
        // A siren always wins: the prompt is cut off and said again once the siren is silent.
        c.interrupted = true;
        c.child.kill("SIGTERM");
      }
      return;
    }
    this.pump();
  }

  private async start(q: Queued): Promise<void> {
    const file = this.fileOf(q.id);
    if (!(await this.exists(file))) {
      if (!this.missing.has(file)) {
        this.missing.add(file);
        this.o.log.error({ prompt: q.id, file }, "voice: prompt file missing (run `anxin-hub voice render`); not spoken");
      }
      this.done({ id: q.id, cause: q.cause, startedAt: this.now(), at: this.now(), ok: false, problem: "missing" });
      return;
    }
    if (this.stopped) return;
    const child = spawn(this.o.program ?? "aplay", ["-q", "-D", this.o.device, file], { stdio: ["ignore", "ignore", "pipe"] });
    const entry = { q, child, interrupted: false };
    const startedAt = this.now();
    this.current = entry;
    this.watch(true);
    let stderr = "";
    child.stderr?.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-300)));
    const guard = setTimeout(() => child.kill("SIGKILL"), PLAY_TIMEOUT_MS);
    guard.unref();
    child.once("error", (err) => (stderr = err.message));
    child.once("close", (code) => {
      clearTimeout(guard);
      this.current = null;
      const at = this.now();
      if (entry.interrupted) {
        this.o.log.info({ prompt: q.id }, "voice: prompt cut off by a siren; said again when it is silent");
        this.done({ id: q.id, cause: q.cause, at, startedAt, ok: false, problem: "interrupted" });
        if (!this.stopped) this.queue.push({ ...q });
      } else if (code === 0) {
        this.o.log.info({ prompt: q.id, cause: q.cause }, "voice: prompt spoken");
        this.done({ id: q.id, cause: q.cause, startedAt, at, ok: true });
      } else {
        this.o.log.error({ prompt: q.id, code, err: stderr.trim() }, "voice: player failed");
        this.done({ id: q.id, cause: q.cause, startedAt, at, ok: false, problem: `failed: ${stderr.trim() || `exit ${code}`}` });
      }
      this.pump();
    });
  }

  private done(p: Played): void {
    this.played.push(p);
    if (this.played.length > KEEP_PLAYED) this.played.shift();
    try {
      this.onPlayed?.(p);
    } catch {
      /* a listener's fault, never the player's */
    }
  }
}
