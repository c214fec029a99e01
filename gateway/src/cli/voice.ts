// `anxin-hub voice render`: renders the prompt catalogue to WAV files at install time (espeak-ng, offline), into
// the configuration's voice.promptsDir (or --out), in its language and at its volume. The daemon only plays them.
import path from "node:path";
import { Option, type Command } from "commander";
import { readConfigFile } from "../config/loader.js";
import { voiceSchema } from "../config/voice.js";
import { renderPrompts } from "../voice/render.js";
import type { Language } from "../voice/prompts.js";

interface RenderFlags {
  config?: string;
  out?: string;
  language?: Language | "all";
  volume?: string;
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
}
