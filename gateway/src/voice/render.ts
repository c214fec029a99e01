// Renders the prompt catalogue to WAV files, once, at install time (`anxin-hub voice render`), with espeak-ng:
// an offline engine, so neither rendering nor speaking ever needs a network. The daemon never calls it; it
// plays the files (player.ts). Volume is fixed here, as espeak-ng's amplitude: changing it means rendering again.
import { execFile } from "node:child_process";
import { mkdir, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { promisify } from "node:util";
import { PROMPT_IDS, PROMPTS, promptFile, type Language, type PromptId } from "./prompts.js";

const run = promisify(execFile);

/** espeak-ng's voice for each language: Mandarin (`cmn`) and English. */
export const ESPEAK_VOICE: Record<Language, string> = { "zh-CN": "cmn", en: "en" };
/** One prompt should render in well under a second; a stuck engine is not waited on for ever. */
const RENDER_TIMEOUT_MS = 30_000;

export interface RenderOptions {
  /** The prompts folder (voice.promptsDir): files go to `<dir>/<language>/<id>.wav`. */
  dir: string;
  languages: readonly Language[];
  /** espeak-ng amplitude (`-a`), 100 its normal. */
  volume: number;
  /** The engine program; default `espeak-ng` on the PATH. */
  espeak?: string;
  /** Only these prompts (default all). */
  ids?: readonly PromptId[];
}

export interface Rendered {
  language: Language;
  id: PromptId;
  file: string;
}

/** Renders every prompt of every language; each file is written beside and renamed into place, so a player never reads half a file. */
export async function renderPrompts(o: RenderOptions): Promise<Rendered[]> {
  const out: Rendered[] = [];
  for (const language of o.languages) {
    await mkdir(path.join(o.dir, language), { recursive: true });
    for (const id of o.ids ?? PROMPT_IDS) {
      const file = path.join(o.dir, promptFile(language, id));
      const tmp = `${file}.${process.pid}.tmp`;
      try {
        await run(o.espeak ?? "espeak-ng", ["-v", ESPEAK_VOICE[language], "-a", String(o.volume), "-w", tmp, "--", PROMPTS[id].text[language]], { timeout: RENDER_TIMEOUT_MS });
        await rename(tmp, file);
      } catch (err) {
        await rm(tmp, { force: true });
        throw new Error(`cannot render prompt ${id} (${language}): ${(err as Error).message}`);
      }
      out.push({ language, id, file });
    }
  }
  // What was rendered, for whoever looks at the folder later (and `anxin-hub voice render` prints it).
  await writeFile(path.join(o.dir, "rendered.json"), `${JSON.stringify({ engine: "espeak-ng", volume: o.volume, languages: o.languages, prompts: o.ids ?? PROMPT_IDS, at: new Date().toISOString() }, null, 2)}\n`);
  return out;
}
