// A real browser for tests: the machine's own Chromium (Debian's `chromium` package) driven by
// playwright-core, headless, in a fresh profile that is deleted afterwards. Nothing is ever downloaded:
// without /usr/bin/chromium the tests that need it skip and say why.
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium, type BrowserContext, type Page } from "playwright-core";

export const CHROMIUM = process.env.ANXIN_TEST_CHROMIUM ?? "/usr/bin/chromium";

const ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

/** A reason to skip when the browser is missing (node:test's `skip`), or false. */
export function browserSkipReason(): string | false {
  return existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set ANXIN_TEST_CHROMIUM)`;
}

export interface TestBrowser {
  context: BrowserContext;
  newPage(viewport?: { width: number; height: number }): Promise<Page>;
  close(): Promise<void>;
}

export async function launchBrowser(options: { locale?: string } = {}): Promise<TestBrowser> {
  const profile = await mkdtemp(path.join(os.tmpdir(), "anxin-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ARGS,
    locale: options.locale ?? "zh-CN",
    viewport: { width: 1366, height: 768 },
  });
  return {
    context,
    async newPage(viewport) {
      const page = await context.newPage();
      if (viewport) await page.setViewportSize(viewport);
      return page;
    },
    async close() {
      await context.close();
      await rm(profile, { recursive: true, force: true });
    },
  };
}

const SCREENSHOTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../docs/screenshots");

/** With ANXIN_SCREENSHOTS=1, saves the page as docs/screenshots/<name>.png; otherwise does nothing. */
export async function screenshot(page: Page, name: string): Promise<void> {
  if (process.env.ANXIN_SCREENSHOTS !== "1") return;
  await mkdir(SCREENSHOTS, { recursive: true });
  await page.screenshot({ path: path.join(SCREENSHOTS, `${name}.png`), animations: "disabled" });
}
