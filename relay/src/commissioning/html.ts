// The report as one self-contained HTML page (no scripts, no external files): printable, and safe to mail
// or file as it is. Every value from the report or the register is escaped.
import { formatTime, householdViewRows, KIND_LABELS, LABELS, LEVEL_LABELS, present, RESULT_LABELS, secondPathRows, signatureLine, STATE_LABELS, type Label, type ReportView } from "./view.js";

const esc = (s: string): string => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c] as string);
const label = (l: Label): string => `<span lang="zh">${esc(l[0])}</span> <span class="en">${esc(l[1])}</span>`;
const cell = (s: string): string => `<td>${esc(s)}</td>`;

export function renderReportHtml(v: ReportView, timeZone: string): string {
  const r = v.report;
  const t = (ms: number | undefined) => formatTime(ms, timeZone);
  const rows = (pairs: Array<[Label, string]>) => pairs.map(([l, val]) => `<tr><th>${label(l)}</th>${cell(val)}</tr>`).join("\n");
  const waived = r.devices.filter((d) => d.waiver);
  const secondPath = secondPathRows(r, t);
  return `<!doctype html>
<html lang="zh-CN">
<head>
<meta charset="utf-8">
<title>调试报告 Commissioning report ${esc(v.hub)} ${esc(v.id)}</title>
<style>
body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","PingFang SC","Microsoft YaHei",sans-serif;margin:2em auto;max-width:60em;color:#222;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ccc}
table{border-collapse:collapse;width:100%;font-size:.92em} th,td{border:1px solid #ccc;padding:.3em .5em;text-align:left;vertical-align:top}
th{background:#f4f4f4;font-weight:600} .en{color:#555;font-weight:normal} .kv th{width:14em}
.state{display:inline-block;padding:.1em .6em;border-radius:.3em;font-weight:600}
.commissioned{background:#dcf3dc} .blocked{background:#f8d7d7}
.passed{color:#16661a} .failed,.missing{color:#a31515;font-weight:600} .waived{color:#8a5a00}
.sig{margin-top:2em;font-size:.85em;color:#444;border-top:1px solid #ccc;padding-top:.6em}
</style>
</head>
<body>
<h1>${label(LABELS.title)}</h1>
<p>${label(LABELS.state)}: <span class="state ${r.state}">${label(STATE_LABELS[r.state])}</span></p>

<h2>${label(LABELS.household)}</h2>
<table class="kv">
${v.household ? rows(householdViewRows(v.household)) : `<tr><th>${label(LABELS.householdId)}</th>${cell(`${r.household ?? "—"}`)}</tr><tr><th>${label(LABELS.household)}</th><td>${label(LABELS.notRegistered)}</td></tr>`}
${rows([
  [LABELS.hub, v.hub],
  [LABELS.installer, r.installer],
  [LABELS.started, t(r.startedAt)],
  [LABELS.finished, t(r.finishedAt)],
  [LABELS.received, t(v.receivedAt)],
])}
</table>

<h2>${label(LABELS.plan)}</h2>
<table class="kv">
${rows([
  [LABELS.planVersion, String(r.plan.version)],
  [LABELS.level, `${LEVEL_LABELS[r.plan.level][0]} ${LEVEL_LABELS[r.plan.level][1]}`],
])}
</table>
<table>
<tr><th>${label(LABELS.kind)}</th><th>${label(LABELS.count)}</th><th>${label(LABELS.rooms)}</th></tr>
${r.plan.items.map((i) => `<tr><td>${label(KIND_LABELS[i.kind])}</td>${cell(String(i.count))}${cell(i.rooms?.join(", ") ?? "—")}</tr>`).join("\n")}
</table>

<h2>${label(LABELS.devices)}</h2>
<table>
<tr>${[LABELS.device, LABELS.kind, LABELS.model, LABELS.deviceAddress, LABELS.room, LABELS.signal, LABELS.battery, LABELS.result, LABELS.testedAt, LABELS.ackedAt, LABELS.testEvent, LABELS.detail].map((l) => `<th>${label(l)}</th>`).join("")}</tr>
${r.devices
  .map(
    (d) =>
      `<tr>${d.id === null ? `<td>${label(LABELS.notConfigured)}</td>` : cell(d.id)}<td>${label(KIND_LABELS[d.kind])}</td>${cell(present(d.model))}${cell(present(d.address))}${cell(present(d.room))}${cell(present(d.signal))}${cell(present(d.battery, "%"))}<td class="${d.result}">${label(RESULT_LABELS[d.result])}</td>${cell(t(d.testedAt))}${cell(t(d.ackedAt))}${cell(present(d.eventId))}${cell(present(d.detail))}</tr>`,
  )
  .join("\n")}
</table>

${secondPath ? `<h2>${label(LABELS.secondPath)}</h2>\n<table class="kv">\n${rows(secondPath)}\n</table>\n` : ""}
<h2>${label(LABELS.waivers)}</h2>
${
  waived.length === 0
    ? `<p>${label(LABELS.none)}</p>`
    : `<table>
<tr>${[LABELS.device, LABELS.kind, LABELS.waiverReason, LABELS.waivedBy, LABELS.waivedAt].map((l) => `<th>${label(l)}</th>`).join("")}</tr>
${waived.map((d) => `<tr>${d.id === null ? `<td>${label(LABELS.notConfigured)}</td>` : cell(d.id)}<td>${label(KIND_LABELS[d.kind])}</td>${cell(d.waiver?.reason ?? "")}${cell(d.waiver?.by ?? "")}${cell(t(d.waiver?.at))}</tr>`).join("\n")}
</table>`
}

<p class="sig">${label(LABELS.signature)}: ${esc(signatureLine(v)[0])}<br>${esc(signatureLine(v)[1])}</p>
</body>
</html>
`;
}
