// `anxin-hub voice render`: renders the prompt catalogue to WAV files at install time (espeak-ng, offline), into
// the configuration's voice.promptsDir (or --out), in its language and at its volume. The daemon only plays them.
// `anxin-hub voice test`: the installer's check that the speaker works: plays one rendered prompt through the
// configured device, at once, and says what happened (exit 1 when it did not play).
import { readFile } from "node:fs/promises";
import path from "node:path";
import { Option, type Command } from "commander";
import { readConfigFile } from "../config/loader.js";
import { voiceSchema } from "../config/voice.js";
import { renderPrompts } from "../voice/render.js";
import { testSpeaker } from "../voice/speaker-test.js";
import { PROMPT_IDS, type Language, type PromptId } from "../voice/prompts.js";

interface RenderFlags {
  config?: string;
  out?: string;
  language?: Language | "all";
  volume?: string;
}

interface TestFlags {
  config?: string;
  prompt?: PromptId;
  lang?: "zh" | "zh-CN" | "en";
  device?: string;
}

export function registerVoice(voice: Command, defaultConfig: string, fail: (message: string, code?: number) => never): void {
  voice
    .command("render")
    .description("render the elder's spoken prompts to WAV files with espeak-ng (at install time; no network needed)")
    .option("--config <file>", `take language, volume and promptsDir from this hub configuration's voice section (default ${defaultConfig})`)
    .option("--out <dir>", "write here instead of voice.promptsDir")
    .addOption(new Option("--language <lang>", "render this language instead of voice.language").choices(["zh-CN", "en", "all"]))
    .option("--volume <n>", "espeak-ng amplitude instead of voice.volume (10-200)")
    .action(async (flags: RenderFlags) => {
      let voice = voiceSchema.parse({});
      let base = process.cwd();
      // Without --out the configuration says where the daemon will look, so it is read.
      if (flags.config || !flags.out) {
        const file = flags.config ?? defaultConfig;
        const loaded = await readConfigFile(file).catch((e: Error) => fail(e.message, 2));
        voice = loaded.config.voice ?? voice;
        base = path.dirname(loaded.file);
      }
      const volume = flags.volume === undefined ? voice.volume : Number(flags.volume);
      if (!Number.isInteger(volume) || volume < 10 || volume > 200) fail("--volume must be a whole number from 10 to 200", 2);
      const languages: Language[] = flags.language === "all" ? ["zh-CN", "en"] : [flags.language ?? voice.language];
      const dir = flags.out ? path.resolve(flags.out) : path.resolve(base, voice.promptsDir);
      try {
        const done = await renderPrompts({ dir, languages, volume });
        process.stdout.write(`rendered ${done.length} prompt(s) (${languages.join(", ")}, volume ${volume}) into ${dir}\n`);
      } catch (e) {
        fail(`${(e as Error).message}${/ENOENT/.test((e as Error).message) ? " (install espeak-ng: apt-get install espeak-ng)" : ""}`);
      }
    });

  voice
    .command("test")
    .description("play one prompt through the configured speaker now (installer's check; quiet hours do not apply)")
    .option("--config <file>", `take device, language and promptsDir from this hub configuration (default ${defaultConfig})`)
    .addOption(new Option("--prompt <id>", "the prompt to play").choices(PROMPT_IDS).default("voice_test"))
    .addOption(new Option("--lang <lang>", "play this language instead of voice.language").choices(["zh", "zh-CN", "en"]))
    .option("--device <name>", "try this ALSA device instead of voice.device (to find the right one before writing it down)")
    .action(async (flags: TestFlags) => {
      const file = flags.config ?? defaultConfig;
      const loaded = await readConfigFile(file).catch((e: Error) => fail(e.message, 2));
      const voice = loaded.config.voice ?? voiceSchema.parse({});
      const language: Language = flags.lang === undefined ? voice.language : flags.lang === "en" ? "en" : "zh-CN";
      const dir = path.resolve(path.dirname(loaded.file), voice.promptsDir);
      const id = flags.prompt ?? "voice_test";
      // Not a failure of the speaker, but the installer should know the daemon will stay silent.
      if (!voice.enabled) process.stderr.write(`anxin-hub: note: voice.enabled is false in ${loaded.file}: the daemon will not speak (playing anyway)\n`);
      const r = await testSpeaker({ dir, language, device: flags.device ?? voice.device, id });
      if (!r.ok) fail(r.message);
      const secs = (ms: number) => `${(ms / 1000).toFixed(1)} s`;
      process.stdout.write(
        `played ${r.id} (${r.language}${r.audioMs === null ? "" : `, ${secs(r.audioMs)} of audio`}) on ALSA device ${r.device} in ${secs(r.playedMs)}\n  file: ${r.file}\n`,
      );
      // Loudness is fixed when rendering: files rendered at another volume than the configuration's are stale.
      const rendered = await readFile(path.join(dir, "rendered.json"), "utf8")
        .then((t) => JSON.parse(t) as { volume?: unknown })
        .catch(() => null);
      if (rendered && typeof rendered.volume === "number" && rendered.volume !== voice.volume)
        process.stdout.write(`  note: rendered at volume ${rendered.volume}, voice.volume is ${voice.volume}: run \`anxin-hub voice render\` to apply it\n`);
    });
}
