// The alarm sound for a critical incident nobody has taken: generated with the Web Audio API (no audio file
// to fetch or cache) — a 960 Hz tone switched on and off 2.5 times a second by a second oscillator, so it
// keeps beeping without any timer in the page.
//
// Browsers keep audio suspended until the operator has interacted with the page; while it is, the console
// says so (useAlarmBlocked) and the first click or key press resumes it.

interface Playing {
  tone: OscillatorNode;
  beat: OscillatorNode;
  out: GainNode;
}

/** What tests read from the page: whether the oscillators run and whether the browser lets them be heard. */
export interface AlarmProbe {
  playing: boolean;
  contextState: AudioContextState | "none";
  starts: number;
}

declare global {
  interface Window {
    __anxinAlarm?: AlarmProbe;
  }
}

let ctx: AudioContext | undefined;
let playing: Playing | undefined;
let starts = 0;
const listeners = new Set<() => void>();

function publish(): void {
  window.__anxinAlarm = { playing: playing !== undefined, contextState: ctx?.state ?? "none", starts };
  for (const l of listeners) l();
}

function context(): AudioContext {
  if (!ctx) {
    ctx = new AudioContext();
    ctx.addEventListener("statechange", publish);
  }
  return ctx;
}

function resumeOnGesture(): void {
  const resume = () => {
    if (ctx?.state === "suspended") void ctx.resume();
  };
  document.addEventListener("pointerdown", resume, { once: true, capture: true });
  document.addEventListener("keydown", resume, { once: true, capture: true });
}

export function startAlarm(): void {
  if (playing) return;
  const ac = context();
  if (ac.state === "suspended") {
    void ac.resume().catch(() => undefined);
    resumeOnGesture();
  }
  const out = ac.createGain();
  out.gain.value = 0.1; // the beat adds ±0.1 around this: a square between silence and 0.2
  const tone = ac.createOscillator();
  tone.frequency.value = 960;
  const beat = ac.createOscillator();
  beat.type = "square";
  beat.frequency.value = 2.5;
  const depth = ac.createGain();
  depth.gain.value = 0.1;
  beat.connect(depth).connect(out.gain);
  tone.connect(out).connect(ac.destination);
  tone.start();
  beat.start();
  playing = { tone, beat, out };
  starts++;
  publish();
}

export function stopAlarm(): void {
  if (!playing) return;
  playing.tone.stop();
  playing.beat.stop();
  playing.out.disconnect();
  playing = undefined;
  publish();
}

/** True while the alarm should sound but the browser holds the audio back. */
export function alarmBlocked(): boolean {
  return playing !== undefined && ctx?.state === "suspended";
}

export function onAlarmChange(listener: () => void): () => void {
  listeners.add(listener);
  return () => listeners.delete(listener);
}
