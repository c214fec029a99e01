// `anxin-hub voice test`, the installer's speaker check, as the installer runs it: the real CLI, prompts rendered
// with espeak-ng, played by the real aplay into an ALSA `file` device (the device string names the file plugin,
// as in voice-prompts.test.ts). Played: exit 0, the report names prompt, file and device, and the bytes the
// device wrote are the prompt's samples — quiet hours set all day long do not hold it back. Not played: exit 1
// with what is wrong (an unknown device with aplay's reason, prompts not rendered, aplay missing).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { renderPrompts } from "../../gateway/src/voice/render.js";
import { promptFile, type Language, type PromptId } from "../../gateway/src/voice/prompts.js";
import { pcmOf } from "../support/wav.js";

const CLI = path.resolve("gateway/src/cli/main.ts");
const missing = (program: string) => spawnSync(program, ["--version"], { encoding: "utf8" }).error !== undefined;
const skip = missing("espeak-ng") ? "espeak-ng is not installed (apt-get install espeak-ng)" : missing("aplay") ? "aplay is not installed (apt-get install alsa-utils)" : false;

const cleanups: Array<() => Promise<unknown>> = [];
after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function cli(args: string[], env: NodeJS.ProcessEnv = process.env) {
  const r = spawnSync(process.execPath, ["--import", "tsx", CLI, "voice", "test", ...args], { encoding: "utf8", env, timeout: 60_000 });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** A hub configuration in a fresh folder; `device` may name a file in it (`speaker.raw`, passed as `raw`). */
async function home(o: { device: string | ((raw: string) => string); promptsDir: string }) {
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-voicetest-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const raw = path.join(dir, "speaker.raw");
  const device = typeof o.device === "string" ? o.device : o.device(raw);
  const file = path.join(dir, "hub.yaml");
  await writeFile(
    file,
    `hub: { id: hub-voicetest, dataDir: ./data }
voice:
  language: zh-CN
  promptsDir: ${JSON.stringify(o.promptsDir)}
  device: ${JSON.stringify(device)}
  quietHours: { from: "00:00", to: "23:59" }
`,
  );
  return { dir, file, raw, device };
}

let rendered: string | undefined;
async function prompts(): Promise<string> {
  if (rendered) return rendered;
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-voicetest-prompts-"));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  await renderPrompts({ dir, languages: ["zh-CN", "en"], volume: 100, ids: ["voice_test", "call_sent"] });
  return (rendered = dir);
}

async function assertWrote(raw: string, promptsDir: string, language: Language, id: PromptId): Promise<void> {
  const written = await readFile(raw);
  const pcm = pcmOf(await readFile(path.join(promptsDir, promptFile(language, id))));
  // The file plugin pads the last period with silence.
  assert.ok(written.length >= pcm.length, `${written.length} bytes written for ${pcm.length}`);
  assert.ok(written.subarray(0, pcm.length).equals(pcm), `${id} (${language}): the prompt's samples, byte for byte`);
}

test("voice test: plays the test prompt through the configured device, in quiet hours, and says so", { skip, timeout: 120_000 }, async () => {
  const promptsDir = await prompts();
  const { file, raw, device } = await home({ device: (raw) => `file:"${raw}",raw`, promptsDir });

  const r = cli(["--config", file]);
  assert.equal(r.code, 0, r.err);
  const wav = path.join(promptsDir, "zh-CN", "voice_test.wav");
  assert.match(r.out, /^played voice_test \(zh-CN, \d+\.\d s of audio\) on ALSA device /);
  assert.ok(r.out.includes(device), r.out);
  assert.ok(r.out.includes(`file: ${wav}`), r.out);
  await assertWrote(raw, promptsDir, "zh-CN", "voice_test");

  // Another prompt, in English.
  await rm(raw);
  const en = cli(["--config", file, "--prompt", "call_sent", "--lang", "en"]);
  assert.equal(en.code, 0, en.err);
  assert.match(en.out, /^played call_sent \(en, /);
  await assertWrote(raw, promptsDir, "en", "call_sent");
});

test("voice test: an unknown device, prompts not rendered, no aplay: exit 1 and what is wrong", { skip, timeout: 120_000 }, async () => {
  const promptsDir = await prompts();
  const absent = await home({ device: "anxin_no_such_pcm", promptsDir });
  const r = cli(["--config", absent.file]);
  assert.equal(r.code, 1);
  assert.equal(r.out, "");
  assert.match(r.err, /aplay failed on device anxin_no_such_pcm \(exit 1\): .*Unknown PCM anxin_no_such_pcm.* — no such ALSA device: check voice\.device/);

  const notRendered = await home({ device: (raw) => `file:"${raw}",raw`, promptsDir: "./none" });
  const n = cli(["--config", notRendered.file]);
  assert.equal(n.code, 1);
  assert.match(n.err, /prompt voice_test \(zh-CN\) is not rendered: .* run `anxin-hub voice render` first/);
  await assert.rejects(stat(notRendered.raw), "nothing was played");

  const noAplay = cli(["--config", absent.file], { ...process.env, PATH: path.join(absent.dir, "no-bin") });
  assert.equal(noAplay.code, 1);
  assert.match(noAplay.err, /aplay is not installed \(apt-get install alsa-utils\)/);
});
