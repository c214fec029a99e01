// The CJK font the PDF needs for its Chinese labels and the Chinese in the report (rooms, street, reasons).
// PDF's standard fonts have no Chinese glyphs, and a font is not something to bundle: it comes from the
// machine (Debian: fonts-wqy-microhei or fonts-noto-cjk) or from `reports.cjkFontFile`. Without one the relay
// still starts and still makes PDFs, with English labels only and a note saying why.
import { readFile } from "node:fs/promises";
import PDFDocument from "pdfkit";

export interface CjkFont {
  file: string;
  /** The PostScript name of the face to use inside a collection (.ttc); not needed for a .ttf/.otf. */
  name?: string;
  data: Buffer;
}

/** Where Debian's CJK font packages put their faces, in order of preference. */
export const KNOWN_CJK_FONTS: ReadonlyArray<{ file: string; name?: string }> = [
  { file: "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", name: "WenQuanYiMicroHei" }, // fonts-wqy-microhei
  { file: "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", name: "NotoSansCJKsc-Regular" }, // fonts-noto-cjk
  { file: "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", name: "WenQuanYiZenHei" }, // fonts-wqy-zenhei
  { file: "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf" }, // fonts-droid-fallback
];

export class FontError extends Error {}

/** Reads the face and proves pdfkit can set Chinese with it; throws a FontError saying what failed. */
export async function loadCjkFont(file: string, name?: string): Promise<CjkFont> {
  let data: Buffer;
  try {
    data = await readFile(file);
  } catch (e) {
    throw new FontError(`${file}: cannot be read (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`);
  }
  try {
    const doc = new PDFDocument({ autoFirstPage: false });
    doc.registerFont("cjk", data, name);
    doc.addPage().font("cjk").text("调试报告");
    doc.end();
  } catch (e) {
    const hint = /\.ttc$/i.test(file) && !name ? " (a .ttc collection needs reports.cjkFontName, the PostScript name of one face)" : "";
    throw new FontError(`${file}: not a font pdfkit can use${name ? ` with the face ${name}` : ""}${hint}: ${(e as Error).message.slice(0, 200)}`);
  }
  return { file, ...(name ? { name } : {}), data };
}

/**
 * The configured font (an error if it cannot be used: a configured file is meant to work), else the first of
 * the known Debian faces that loads, else undefined (English-only PDFs).
 */
export async function findCjkFont(configured?: { file: string; name?: string }, known = KNOWN_CJK_FONTS): Promise<CjkFont | undefined> {
  if (configured) {
    try {
      return await loadCjkFont(configured.file, configured.name);
    } catch (e) {
      throw new Error(`reports.cjkFontFile: ${(e as Error).message}`);
    }
  }
  for (const k of known) {
    try {
      return await loadCjkFont(k.file, k.name);
    } catch {
      // not installed here: try the next
    }
  }
  return undefined;
}
