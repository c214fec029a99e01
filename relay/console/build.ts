// Builds the duty console: src/main.tsx and src/app.css bundled and minified by esbuild into
// dist/console/{index.html, app.js, app.css, chunks/*.js}. The page asks for app.js?v=<hash> and app.css?v=<hash>, so a
// browser never keeps an old bundle after an upgrade while the file names stay fixed for the server.
// Run as `node --import tsx relay/console/build.ts` (part of `npm run build`), or call buildConsole().
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import * as esbuild from "esbuild";

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, "../..");
export const DEFAULT_OUT_DIR = path.join(ROOT, "dist", "console");

export interface BuildOptions {
  outDir?: string;
  /** Default true; false keeps the output readable when debugging. */
  minify?: boolean;
}

export interface BuildResult {
  outDir: string;
  /** File name → size in bytes. */
  files: Record<string, number>;
}

export async function buildConsole(options: BuildOptions = {}): Promise<BuildResult> {
  const outDir = options.outDir ?? DEFAULT_OUT_DIR;
  // Nothing left over from an earlier build can be served by mistake.
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  const result = await esbuild.build({
    entryPoints: [
      { in: path.join(HERE, "src", "main.tsx"), out: "app" },
      { in: path.join(HERE, "src", "app.css"), out: "app" },
    ],
    outdir: outDir,
    bundle: true,
    format: "esm",
    // Pages loaded on demand (the reports page with its charts) become chunks of their own; their names
    // carry their content hash, so a browser never mixes an old chunk with a new app.js.
    splitting: true,
    chunkNames: "chunks/[name]-[hash]",
    // The browsers the duty team runs: current Chromium, Firefox, Safari on tablets.
    target: ["chrome110", "firefox115", "safari16"],
    minify: options.minify ?? true,
    sourcemap: false,
    jsx: "automatic",
    jsxImportSource: "preact",
    tsconfig: path.join(HERE, "tsconfig.json"),
    legalComments: "none",
    logLevel: "silent",
    define: { "process.env.NODE_ENV": '"production"' },
    metafile: true,
    // The metafile's paths are relative to this.
    absWorkingDir: ROOT,
  });
  // The chunks app.js imports at once: announced in the page so the browser fetches them beside app.js
  // rather than after it.
  const appOut = Object.entries(result.metafile.outputs).find(([, o]) => o.entryPoint?.endsWith("main.tsx"))?.[1];
  const preload = (appOut?.imports ?? []).filter((i) => i.kind === "import-statement").map((i) => path.relative(outDir, path.resolve(ROOT, i.path)).split(path.sep).join("/"));
  const js = await readFile(path.join(outDir, "app.js"));
  const css = await readFile(path.join(outDir, "app.css"));
  const html = indexHtml(contentHash(js), contentHash(css), preload);
  await writeFile(path.join(outDir, "index.html"), html);
  const chunks = await readdir(path.join(outDir, "chunks")).catch(() => [] as string[]);
  const chunkSizes = Object.fromEntries(await Promise.all(chunks.map(async (f) => [`chunks/${f}`, (await stat(path.join(outDir, "chunks", f))).size] as const)));
  return { outDir, files: { "index.html": Buffer.byteLength(html), "app.js": js.length, "app.css": css.length, ...chunkSizes } };
}

const contentHash = (data: Buffer) => createHash("sha256").update(data).digest("hex").slice(0, 12);

/**
 * The page: relative asset paths (it works wherever the relay mounts it), and a policy that lets it load
 * nothing but its own files and talk to nothing but its own origin.
 */
function indexHtml(jsHash: string, cssHash: string, preload: readonly string[]): string {
  const csp = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; object-src 'none'";
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<title>安心 Anxin</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="app.css?v=${cssHash}">
${preload.map((p) => `<link rel="modulepreload" href="${p}">\n`).join("")}<script type="module" src="app.js?v=${jsHash}"></script>
</head>
<body>
<div id="app"></div>
</body>
</html>
`;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { outDir, files } = await buildConsole();
  const list = Object.entries(files).map(([f, n]) => `${f} ${(n / 1024).toFixed(1)} KiB`);
  console.log(`console built into ${path.relative(process.cwd(), outDir) || "."}: ${list.join(", ")}`);
}
