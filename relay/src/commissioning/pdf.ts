// The report as a PDF made by pdfkit (a maintained library, not hand-written PDF operators). With a CJK font
// the labels are Chinese and English and Chinese values print as they are; without one the labels are English
// only, characters the standard font cannot show print as "?", and the first page says so.
import PDFDocument from "pdfkit";
import type { CjkFont } from "./fonts.js";
import { formatTime, householdViewRows, KIND_LABELS, LABELS, LEVEL_LABELS, present, RESULT_LABELS, secondPathRows, signatureLine, STATE_LABELS, type Label, type ReportView } from "./view.js";

export const NO_CJK_FONT_NOTE =
  "Note: no CJK font was found on the relay, so this PDF has English labels only and Chinese text in it is shown as '?'. Install fonts-wqy-microhei or fonts-noto-cjk, or set reports.cjkFontFile; the HTML report shows everything.";

/** Latin-1 only for PDF's standard Helvetica (WinAnsi): anything else would print as garbage, so it is "?". */
const latin = (s: string): string => s.replace(/[^\u0020-\u007e\u00a0-\u00ff]/gu, "?");

export function renderReportPdf(v: ReportView, o: { font: CjkFont | undefined; timeZone: string }): Promise<Buffer> {
  const doc = new PDFDocument({
    size: "A4",
    margin: 48,
    info: { Title: `Commissioning report ${v.hub} ${v.id}`, Author: `hub ${v.hub}`, Subject: "Anxin commissioning report", CreationDate: new Date(v.receivedAt) },
  });
  const chunks: Buffer[] = [];
  const done = new Promise<Buffer>((resolve, reject) => {
    doc.on("data", (c: Buffer) => chunks.push(c));
    doc.on("end", () => resolve(Buffer.concat(chunks)));
    doc.on("error", reject);
  });
  const cjk = o.font !== undefined;
  if (o.font) doc.registerFont("body", o.font.data, o.font.name);
  else doc.registerFont("body", "Helvetica");
  doc.font("body");

  const r = v.report;
  const t = (ms: number | undefined) => formatTime(ms, o.timeZone);
  const text = (s: string) => (cjk ? s : latin(s));
  const lab = (l: Label) => (cjk ? `${l[0]} ${l[1]}` : l[1]);
  const heading = (l: Label, size = 13) => doc.moveDown(0.6).fontSize(size).fillColor("#000").text(lab(l)).moveDown(0.2).fontSize(10);
  const kv = (l: Label, value: string, indent = 0) =>
    doc
      .fontSize(10)
      .fillColor("#555")
      .text(`${lab(l)}: `, doc.page.margins.left + indent, undefined, { continued: true })
      .fillColor("#000")
      .text(text(value));

  doc.fontSize(18).text(lab(LABELS.title));
  doc.fontSize(11).text(`${lab(LABELS.state)}: ${lab(STATE_LABELS[r.state])}`);
  if (!cjk) doc.moveDown(0.3).fontSize(9).fillColor("#a31515").text(NO_CJK_FONT_NOTE).fillColor("#000");

  heading(LABELS.household);
  if (v.household) for (const [l, val] of householdViewRows(v.household)) kv(l, val);
  else {
    kv(LABELS.householdId, r.household ?? "—");
    kv(LABELS.household, lab(LABELS.notRegistered));
  }
  kv(LABELS.hub, v.hub);
  kv(LABELS.installer, r.installer);
  kv(LABELS.started, t(r.startedAt));
  kv(LABELS.finished, t(r.finishedAt));
  kv(LABELS.received, t(v.receivedAt));

  heading(LABELS.plan);
  kv(LABELS.planVersion, String(r.plan.version));
  kv(LABELS.level, lab(LEVEL_LABELS[r.plan.level]));
  for (const i of r.plan.items) doc.fontSize(10).text(text(`• ${lab(KIND_LABELS[i.kind])} × ${i.count}${i.rooms?.length ? ` (${i.rooms.join(", ")})` : ""}`), doc.page.margins.left + 12);

  heading(LABELS.devices);
  r.devices.forEach((d, n) => {
    doc
      .moveDown(0.3)
      .fontSize(11)
      .fillColor(d.result === "passed" ? "#16661a" : d.result === "waived" ? "#8a5a00" : "#a31515")
      .text(text(`${n + 1}. ${d.id ?? lab(LABELS.notConfigured)} · ${lab(KIND_LABELS[d.kind])} · ${lab(RESULT_LABELS[d.result])}`), doc.page.margins.left)
      .fillColor("#000");
    kv(LABELS.model, present(d.model), 14);
    kv(LABELS.deviceAddress, present(d.address), 14);
    kv(LABELS.room, present(d.room), 14);
    kv(LABELS.signal, present(d.signal), 14);
    kv(LABELS.battery, present(d.battery, "%"), 14);
    kv(LABELS.result, lab(RESULT_LABELS[d.result]), 14);
    kv(LABELS.testedAt, t(d.testedAt), 14);
    kv(LABELS.ackedAt, t(d.ackedAt), 14);
    if (d.eventId) kv(LABELS.testEvent, d.eventId, 14);
    if (d.detail) kv(LABELS.detail, d.detail, 14);
    if (d.waiver) kv(LABELS.waivers, `${d.waiver.reason} (${d.waiver.by}, ${t(d.waiver.at)})`, 14);
  });

  const secondPath = secondPathRows(r, t);
  if (secondPath) {
    heading(LABELS.secondPath);
    for (const [l, value] of secondPath) kv(l, value);
  }

  heading(LABELS.waivers);
  const waived = r.devices.filter((d) => d.waiver);
  if (waived.length === 0) doc.fontSize(10).text(lab(LABELS.none), doc.page.margins.left);
  for (const d of waived) {
    doc.fontSize(10).text(text(`• ${d.id ?? lab(LABELS.notConfigured)} · ${lab(KIND_LABELS[d.kind])}`), doc.page.margins.left);
    kv(LABELS.waiverReason, d.waiver?.reason ?? "", 14);
    kv(LABELS.waivedBy, d.waiver?.by ?? "", 14);
    kv(LABELS.waivedAt, t(d.waiver?.at), 14);
  }

  doc.moveDown(1).fontSize(9).fillColor("#444");
  const sig = signatureLine(v);
  if (cjk) doc.text(sig[0], doc.page.margins.left);
  doc.text(sig[1], doc.page.margins.left);
  doc.end();
  return done;
}
