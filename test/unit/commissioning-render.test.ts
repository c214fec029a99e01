// The report's masking, its font lookup, and the PDF without a CJK font (a fresh machine with only Node):
// still made, English labels, a note saying why, and every device, result and waiver reason in it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { findCjkFont } from "../../relay/src/commissioning/fonts.js";
import { maskAddress, maskName } from "../../relay/src/households/mask.js";
import { renderReportPdf } from "../../relay/src/commissioning/pdf.js";
import type { ReportView } from "../../relay/src/commissioning/view.js";

test("names and addresses are masked to the family name and the building", () => {
  assert.equal(maskName("张三丰"), "张**");
  assert.equal(maskName("李四"), "李**", "the same ** whatever the name's length");
  assert.equal(maskName("Wang Fang"), "W**");
  assert.equal(maskAddress("幸福路12弄3号502室"), "幸福路12弄*号***室");
  assert.equal(maskAddress("Room 502, 12 Happiness Road"), "Room 502, ** Happiness Road");
  assert.equal(maskAddress("老城厢某处"), "老城***");
});

test("a configured font that cannot be used is an error naming the key; none known: undefined", async () => {
  await assert.rejects(findCjkFont({ file: "/nonexistent/font.ttf" }), /^Error: reports\.cjkFontFile: \/nonexistent\/font\.ttf: cannot be read \(ENOENT\)/);
  assert.equal(await findCjkFont(undefined, [{ file: "/nonexistent/a.ttc", name: "A" }]), undefined);
});

test("without a CJK font the PDF is still made, in English, with a note and every device", async () => {
  const T = Date.parse("2026-12-06T02:00:00Z");
  const v: ReportView = {
    id: "01M94MK7DPF9KX73Y6W2K7P04F",
    eventId: "01M94MK7DPF9KX73Y6W2K7P04F",
    hub: "hub-1",
    receivedAt: T + 3600_000,
    household: { id: "h-1", elder: "张**", address: "幸福路12弄*号***室", street: "石门二路街道", community: "幸福社区" },
    report: {
      v: 1,
      hub: "hub-1",
      plan: { version: 1, level: "low", items: [{ kind: "smoke_detector", count: 1 }] },
      installer: "ivan",
      startedAt: T,
      finishedAt: T + 60_000,
      state: "blocked",
      devices: [
        { id: "smoke-1", kind: "smoke_detector", model: "HS1SA-Z", room: "卧室", result: "failed", detail: "no alarm seen in 120 s", testedAt: T },
        { id: null, kind: "gas_valve", result: "waived", waiver: { reason: "no gas in this home", by: "admin:root", at: T } },
      ],
      secondPath: { result: "failed", sim: "absent", registration: "not_registered", rssiDbm: null, operator: null, longestSms: 121, detail: "no usable SIM (absent)" },
    },
  };
  const pdf = await renderReportPdf(v, { font: undefined, timeZone: "Asia/Shanghai" });
  const dir = await mkdtemp(path.join(os.tmpdir(), "anxin-pdf-"));
  try {
    await writeFile(path.join(dir, "r.pdf"), pdf);
    const out = spawnSync("pdftotext", ["-enc", "UTF-8", path.join(dir, "r.pdf"), "-"], { encoding: "utf8" });
    assert.equal(out.status, 0, `pdftotext (poppler-utils): ${out.error?.message ?? out.stderr}`);
    const text = out.stdout.replace(/\s+/g, " ");
    for (const s of ["Commissioning report", "no CJK font was found", "smoke-1", "HS1SA-Z", "failed", "no alarm seen in 120 s", "not configured", "waived", "no gas in this home", "blocked", "2026-12-06 10:00:00 GMT+08:00", "Second path (cellular)", "no usable SIM (absent)", "121 / 160"])
      assert.ok(text.includes(s), `${s} in: ${text}`);
    assert.ok(!/[\u4e00-\u9fff]/u.test(text), "no Chinese without a font that has it");
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
