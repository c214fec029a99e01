// The installer's speaker check (`anxin-hub voice test`): plays one rendered prompt through the ALSA device the
// daemon will use, the way the daemon plays it (`aplay -q -D <device> <file>`), and says what happened or what
// is wrong. It plays at once: no queue, so quiet hours and sirens do not hold it back (the installer is there,
// listening), and it is not the daemon, so it cannot tell the elder anything.
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { promptFile, type Language, type PromptId } from "./prompts.js";

export interface SpeakerTestOptions {
  /** The prompts folder (voice.promptsDir, resolved). */
  dir: string;
  language: Language;
  /** ALSA device (`aplay -D`). */
  device: string;
  id: PromptId;
  /** The player program; default `aplay` on the PATH. */
  program?: string;
  /** A prompt is a few seconds long; the daemon gives up on a player after the same 30 s. */
  timeoutMs?: number;
  now?: () => number;
}

export type SpeakerProblem = "not_rendered" | "unreadable" | "no_player" | "player_failed" | "timeout";

export type SpeakerTestResult = { file: string; device: string; id: PromptId; language: Language; audioMs: number | null } & (
  | { ok: true; playedMs: number }
  | { ok: false; problem: SpeakerProblem; message: string }
);

const PLAY_TIMEOUT_MS = 30_000;

/** How long a PCM WAV file sounds, from its `fmt ` and `data` chunks; null when it is not one we can read. */
export function wavDurationMs(wav: Buffer): number | null {
  if (wav.length < 12 || wav.toString("ascii", 0, 4) !== "RIFF" || wav.toString("ascii", 8, 12) !== "WAVE") return null;
  let byteRate = 0;
  for (let at = 12; at + 8 <= wav.length; ) {
    const id = wav.toString("ascii", at, at + 4);
    const size = wav.readUInt32LE(at + 4);
    if (id === "fmt " && at + 16 <= wav.length) byteRate = wav.readUInt32LE(at + 16);
    if (id === "data") {
      if (byteRate <= 0) return null;
      // A header written by a stream (size left at its maximum) says more than the file holds: take the file.
      const bytes = Math.min(size, wav.length - at - 8);
      return Math.round((bytes / byteRate) * 1000);
    }
    at += 8 + size + (size % 2);
  }
  return null;
}

/**
 * aplay's stderr in one line, with what to do about it: its own lines without the source locations
 * (`aplay: main:831: audio open error: Device or resource busy` → `audio open error: Device or resource busy`).
 */
export function summariseAplay(stderr: string): string {
  const lines = [
    ...new Set(
      stderr
        .split("\n")
        .map((l) => l.trim().replace(/^aplay: \w+:\d+: /, "").replace(/^ALSA lib [\w.-]+:\d+:\(\w+\) /, ""))
        .filter((l) => l.length > 0),
    ),
  ];
  const said = lines.slice(-3).join("; ").slice(0, 300) || "no message";
  let hint = "";
  if (/busy/i.test(stderr)) hint = "the device is in use (the hub daemon saying a prompt, or another program); try again in a moment, `fuser -v /dev/snd/*` shows who holds it";
  else if (/permission denied/i.test(stderr)) hint = "not allowed to open the sound device: run it as a member of group audio (`runuser -u anxin -- anxin-hub voice test`)";
  else if (/unknown pcm|no such (file|device)|cannot find card|invalid card|invalid ctl/i.test(stderr)) hint = "no such ALSA device: check voice.device (`aplay -l` lists the cards, `aplay -L` the device names)";
  return hint ? `${said} — ${hint}` : said;
}

/** Plays the prompt once and says how it went; never throws for a fault of the speaker or the files. */
export async function testSpeaker(o: SpeakerTestOptions): Promise<SpeakerTestResult> {
  const now = o.now ?? Date.now;
  const file = path.join(o.dir, promptFile(o.language, o.id));
  const base = { file, device: o.device, id: o.id, language: o.language };
  let wav: Buffer;
  try {
    wav = await readFile(file);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ENOENT")
      return { ...base, audioMs: null, ok: false, problem: "not_rendered", message: `prompt ${o.id} (${o.language}) is not rendered: ${file} does not exist; run \`anxin-hub voice render\` first` };
    return { ...base, audioMs: null, ok: false, problem: "unreadable", message: `cannot read ${file}: ${err.message}` };
  }
  const audioMs = wavDurationMs(wav);
  const program = o.program ?? "aplay";
  const startedAt = now();
  return new Promise<SpeakerTestResult>((resolve) => {
    // The daemon's own invocation (player.ts), so a pass here means the daemon's prompts will play too.
    const child = spawn(program, ["-q", "-D", o.device, file], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    const spawned: { error?: NodeJS.ErrnoException } = {};
    let timedOut = false;
    child.stderr.on("data", (b: Buffer) => (stderr = (stderr + b.toString("utf8")).slice(-2000)));
    const guard = setTimeout(() => {
      timedOut = true;
      child.kill("SIGKILL");
    }, o.timeoutMs ?? PLAY_TIMEOUT_MS);
    child.once("error", (err) => (spawned.error = err));
    child.once("close", (code, signal) => {
      clearTimeout(guard);
      const playedMs = now() - startedAt;
      const e = spawned.error;
      if (e?.code === "ENOENT") resolve({ ...base, audioMs, ok: false, problem: "no_player", message: `${program} is not installed (apt-get install alsa-utils)` });
      else if (e) resolve({ ...base, audioMs, ok: false, problem: "player_failed", message: `cannot run ${program}: ${e.message}` });
      else if (timedOut) resolve({ ...base, audioMs, ok: false, problem: "timeout", message: `${program} did not finish within ${Math.round((o.timeoutMs ?? PLAY_TIMEOUT_MS) / 1000)} s on device ${o.device}; stopped (a device that never drains: check voice.device)` });
      else if (code === 0) resolve({ ...base, audioMs, ok: true, playedMs });
      else resolve({ ...base, audioMs, ok: false, problem: "player_failed", message: `${program} failed on device ${o.device} (${code === null ? `signal ${signal}` : `exit ${code}`}): ${summariseAplay(stderr)}` });
    });
  });
}
