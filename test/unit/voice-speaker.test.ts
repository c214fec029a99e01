// The installer's speaker check (`anxin-hub voice test`, gateway/src/voice/speaker-test.ts) without a sound card:
// how long a WAV sounds, aplay's errors turned into one line with what to do, and each way the check can end,
// with stand-ins for aplay (a real device is test/integration/voice-test-cli.test.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { summariseAplay, testSpeaker, wavDurationMs } from "../../gateway/src/voice/speaker-test.js";
import { promptFile } from "../../gateway/src/voice/prompts.js";

/** A mono 16-bit PCM WAV of `samples` samples at `rate` Hz; `dataSize` overrides the data chunk's size field. */
function wav(samples: number, rate = 22050, dataSize?: number): Buffer {
  const data = Buffer.alloc(samples * 2);
  const h = Buffer.alloc(44);
  h.write("RIFF", 0, "ascii");
  h.writeUInt32LE(36 + data.length, 4);
  h.write("WAVE", 8, "ascii");
  h.write("fmt ", 12, "ascii");
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(1, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write("data", 36, "ascii");
  h.writeUInt32LE(dataSize ?? data.length, 40);
  return Buffer.concat([h, data]);
}

test("wav duration: from the fmt and data chunks; a streamed header's oversized data length is capped at the file", () => {
  assert.equal(wavDurationMs(wav(22050)), 1000);
  assert.equal(wavDurationMs(wav(11025, 22050, 0xffffffff)), 500);
  assert.equal(wavDurationMs(Buffer.from("not a wave file at all")), null);
});

test("aplay's errors: one line without source locations, and what to do", () => {
  const busy = summariseAplay("aplay: main:831: audio open error: Device or resource busy\n");
  assert.match(busy, /^audio open error: Device or resource busy — the device is in use/);
  const absent = summariseAplay("ALSA lib pcm.c:2664:(snd_pcm_open_noupdate) Unknown PCM nosuch\naplay: main:831: audio open error: No such file or directory\n");
  assert.match(absent, /^Unknown PCM nosuch; audio open error: No such file or directory — no such ALSA device: check voice\.device/);
  assert.match(summariseAplay("aplay: main:831: audio open error: Permission denied\n"), /group audio/);
  assert.equal(summariseAplay(""), "no message");
});

async function rig(): Promise<{ dir: string; stand: (name: string, script: string) => Promise<string> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-speaker-"));
  await mkdir(path.join(dir, "zh-CN"), { recursive: true });
  await writeFile(path.join(dir, promptFile("zh-CN", "voice_test")), wav(22050 * 2));
  const stand = async (name: string, script: string) => {
    const p = path.join(dir, name);
    await writeFile(p, `#!/bin/sh\n${script}\n`);
    await chmod(p, 0o755);
    return p;
  };
  return { dir, stand };
}

test("speaker test: played with the daemon's aplay arguments; reports file, device and lengths", async () => {
  const { dir, stand } = await rig();
  try {
    const program = await stand("aplay-ok", `echo "$@" > "${dir}/args"`);
    const r = await testSpeaker({ dir, language: "zh-CN", device: "plughw:0,0", id: "voice_test", program });
    assert.equal(r.ok, true, JSON.stringify(r));
    assert.equal(r.file, path.join(dir, "zh-CN/voice_test.wav"));
    assert.equal(r.device, "plughw:0,0");
    assert.equal(r.audioMs, 2000);
    assert.ok(r.ok && r.playedMs >= 0);
    assert.equal((await readFile(path.join(dir, "args"), "utf8")).trim(), `-q -D plughw:0,0 ${r.file}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("speaker test: not rendered, no aplay, a busy device, a player that never ends: each says what is wrong", async () => {
  const { dir, stand } = await rig();
  try {
    const ok = await stand("aplay-ok", "exit 0");
    const notRendered = await testSpeaker({ dir, language: "en", device: "default", id: "voice_test", program: ok });
    assert.equal(notRendered.ok, false);
    assert.ok(!notRendered.ok && notRendered.problem === "not_rendered" && /anxin-hub voice render/.test(notRendered.message), JSON.stringify(notRendered));

    const none = await testSpeaker({ dir, language: "zh-CN", device: "default", id: "voice_test", program: path.join(dir, "no-such-aplay") });
    assert.ok(!none.ok && none.problem === "no_player" && /alsa-utils/.test(none.message), JSON.stringify(none));

    const busy = await stand("aplay-busy", `echo "aplay: main:831: audio open error: Device or resource busy" >&2; exit 1`);
    const b = await testSpeaker({ dir, language: "zh-CN", device: "hw:0,0", id: "voice_test", program: busy });
    assert.ok(!b.ok && b.problem === "player_failed", JSON.stringify(b));
    assert.ok(!b.ok && b.message.includes("on device hw:0,0 (exit 1): audio open error: Device or resource busy — the device is in use"), b.ok ? "" : b.message);

    const stuck = await stand("aplay-stuck", "exec sleep 30");
    const s = await testSpeaker({ dir, language: "zh-CN", device: "default", id: "voice_test", program: stuck, timeoutMs: 200 });
    assert.ok(!s.ok && s.problem === "timeout", JSON.stringify(s));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
