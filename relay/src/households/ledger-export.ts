// The ledger as a table people open: CSV (UTF-8 with a BOM, so Excel shows the Chinese headers right) and an
// Excel workbook (exceljs). Chinese column headers by default, English on request. Dates are written as
// YYYY-MM-DD (or with the time) in China Standard Time, as text, so they read the same in every program.
import { DEVICE_KINDS, type DeviceKind } from "./schema.js";
import type { LedgerRow } from "./ledger.js";
import type { UpkeepItem } from "./upkeep.js";

export const LEDGER_LANGS = ["zh", "en"] as const;
export type LedgerLang = (typeof LEDGER_LANGS)[number];
export const LEDGER_FORMATS = ["json", "csv", "xlsx"] as const;
export type LedgerFormat = (typeof LEDGER_FORMATS)[number];

/** China Standard Time (UTC+8, no daylight saving): the district's day. */
export const LEDGER_TZ_OFFSET_MS = 8 * 3_600_000;

const KIND_ZH: Record<DeviceKind, string> = {
  smoke_detector: "烟感",
  gas_detector: "燃气探测器",
  gas_valve: "燃气切断阀",
  co_detector: "一氧化碳探测器",
  sos_button: "一键呼叫",
  camera: "摄像头",
  fall_radar: "跌倒雷达",
  vital_radar: "生命体征雷达",
};
const LEVEL_ZH: Record<string, string> = { high: "高", medium: "中", low: "低" };
const WHAT_ZH: Record<UpkeepItem["what"], string> = { self_test: "月度自检", battery: "更换电池", reassessment: "年度复评" };
const STATUS_ZH: Record<UpkeepItem["status"], string> = { ok: "正常", due: "到期", overdue: "逾期" };

export function day(ms: number | null): string {
  return ms === null ? "" : new Date(ms + LEDGER_TZ_OFFSET_MS).toISOString().slice(0, 10);
}

interface Column {
  zh: string;
  en: string;
  value(r: LedgerRow, lang: LedgerLang): string | number;
}

const yesNo = (b: boolean | null, lang: LedgerLang) => (b === null ? "" : lang === "zh" ? (b ? "是" : "否") : b ? "yes" : "no");
const list = (xs: string[]) => xs.join(" ");

function upkeepText(items: UpkeepItem[], lang: LedgerLang): string {
  return items
    .filter((i) => i.status !== "ok")
    .map((i) => {
      const what = lang === "zh" ? WHAT_ZH[i.what] : i.what;
      const status = lang === "zh" ? STATUS_ZH[i.status] : i.status;
      return `${what}${i.device ? ` ${i.device}` : ""} ${status} ${day(i.dueAt)}`;
    })
    .join("; ");
}

/** The columns in order; each kind of kit has a planned and an installed column. */
export const LEDGER_COLUMNS: readonly Column[] = [
  { zh: "街道", en: "street", value: (r) => r.street },
  { zh: "社区", en: "community", value: (r) => r.community },
  { zh: "户编号", en: "household", value: (r) => r.householdId },
  { zh: "老人姓名", en: "elder", value: (r) => r.elder },
  { zh: "网关", en: "hub", value: (r) => r.hub },
  { zh: "风险等级", en: "risk level", value: (r, l) => (r.level === null ? "" : l === "zh" ? (LEVEL_ZH[r.level] ?? r.level) : r.level) },
  { zh: "方案已批准", en: "plan approved", value: (r, l) => yesNo(r.planApproved, l) },
  ...DEVICE_KINDS.flatMap((k): Column[] => [
    { zh: `${KIND_ZH[k]}(计划)`, en: `${k} planned`, value: (r) => r.kit[k].planned },
    { zh: `${KIND_ZH[k]}(已装)`, en: `${k} installed`, value: (r) => r.kit[k].installed },
  ]),
  { zh: "调试完成日期", en: "commissioned", value: (r) => day(r.commissionedAt) },
  { zh: "网关在线", en: "hub online", value: (r, l) => yesNo(r.hubOnline, l) },
  { zh: "离线设备", en: "devices offline", value: (r) => list(r.devicesOffline) },
  { zh: "低电量设备", en: "low battery", value: (r) => list(r.batteryLow) },
  { zh: "故障设备", en: "faults", value: (r) => list(r.faults) },
  { zh: "期间事件数", en: "incidents", value: (r) => r.incidentsTotal },
  {
    zh: "期间事件(按类型)",
    en: "incidents by type",
    value: (r) =>
      Object.entries(r.incidents)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([t, n]) => `${t}:${n}`)
        .join(" "),
  },
  { zh: "烟感最近自检", en: "smoke last self-test", value: (r) => day(r.lastSelfTest.smoke_detector) },
  { zh: "一键呼叫最近自检", en: "sos last self-test", value: (r) => day(r.lastSelfTest.sos_button) },
  { zh: "维护到期数", en: "upkeep due", value: (r) => r.upkeepDue },
  { zh: "维护逾期数", en: "upkeep overdue", value: (r) => r.upkeepOverdue },
  { zh: "维护明细", en: "upkeep detail", value: (r, l) => upkeepText(r.upkeep, l) },
  { zh: "下次到期", en: "next due", value: (r) => day(r.nextDueAt) },
];

export function ledgerHeaders(lang: LedgerLang): string[] {
  return LEDGER_COLUMNS.map((c) => (lang === "zh" ? c.zh : c.en));
}

export function ledgerTable(rows: LedgerRow[], lang: LedgerLang): Array<Array<string | number>> {
  return rows.map((r) => LEDGER_COLUMNS.map((c) => c.value(r, lang)));
}

/**
 * RFC 4180 quoting; a cell starting with = + - @ (a spreadsheet would run it as a formula) gets a leading
 * apostrophe, since street and community names are typed by people.
 */
function csvCell(v: string | number): string {
  let s = String(v);
  if (typeof v === "string" && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function ledgerCsv(rows: LedgerRow[], lang: LedgerLang): Buffer {
  const lines = [ledgerHeaders(lang), ...ledgerTable(rows, lang)].map((r) => r.map(csvCell).join(","));
  return Buffer.from(`\uFEFF${lines.join("\r\n")}\r\n`, "utf8");
}

export async function ledgerXlsx(rows: LedgerRow[], lang: LedgerLang, meta: { generatedAt: number; from: number; to: number }): Promise<Buffer> {
  // Loaded on the first export, not with every relay start: exceljs is large and slow to load (half a second).
  const { default: ExcelJS } = await import("exceljs");
  const wb = new ExcelJS.Workbook();
  wb.creator = "anxin-relay";
  wb.created = new Date(meta.generatedAt);
  const ws = wb.addWorksheet(lang === "zh" ? "台账" : "ledger", { views: [{ state: "frozen", ySplit: 1 }] });
  const headers = ledgerHeaders(lang);
  ws.columns = headers.map((h) => ({ header: h, width: Math.max(10, Math.min(40, [...h].length * 2 + 2)) }));
  ws.getRow(1).font = { bold: true };
  for (const r of ledgerTable(rows, lang)) ws.addRow(r);
  ws.autoFilter = { from: { row: 1, column: 1 }, to: { row: 1, column: headers.length } };
  // Which period the incident counts cover: a second sheet, so the first stays a plain table.
  const about = wb.addWorksheet(lang === "zh" ? "说明" : "about");
  about.addRow([lang === "zh" ? "生成时间" : "generated", `${new Date(meta.generatedAt + LEDGER_TZ_OFFSET_MS).toISOString().slice(0, 16).replace("T", " ")} (UTC+8)`]);
  about.addRow([lang === "zh" ? "事件统计起" : "incidents from", day(meta.from)]);
  about.addRow([lang === "zh" ? "事件统计止(不含)" : "incidents until (excluded)", day(meta.to)]);
  return Buffer.from(await wb.xlsx.writeBuffer());
}

/**
 * A period bound: ms since epoch, an ISO time, or a date (YYYY-MM-DD, the start of that day in China
 * Standard Time). Undefined for anything else, so the caller names the parameter in its error.
 */
export function parseWhen(s: string): number | undefined {
  if (/^\d{1,15}$/.test(s)) return Number(s);
  if (/^\d{4}-\d{2}-\d{2}$/.test(s)) {
    const t = Date.parse(`${s}T00:00:00+08:00`);
    return Number.isNaN(t) ? undefined : t;
  }
  if (!/^\d{4}-\d{2}-\d{2}T/.test(s)) return undefined;
  const t = Date.parse(s);
  return Number.isNaN(t) ? undefined : t;
}

/**
 * The period from the `from` and `to` given: a date as `to` includes that whole day; without `to`, up to
 * now; without `from`, 30 days before `to`.
 */
export function ledgerPeriod(from: string | undefined, to: string | undefined, now: number): { from: number; to: number } | { error: string } {
  let end = now;
  if (to !== undefined) {
    const t = parseWhen(to);
    if (t === undefined) return { error: `to: "${to}" is not a date (YYYY-MM-DD), an ISO time or ms since epoch` };
    end = /^\d{4}-\d{2}-\d{2}$/.test(to) ? t + 86_400_000 : t;
  }
  let start = end - 30 * 86_400_000;
  if (from !== undefined) {
    const f = parseWhen(from);
    if (f === undefined) return { error: `from: "${from}" is not a date (YYYY-MM-DD), an ISO time or ms since epoch` };
    start = f;
  }
  if (start >= end) return { error: `from (${day(start)}) must be before to (${day(end)})` };
  return { from: start, to: end };
}

/** ASCII only (it goes in a header); the street and community are in the rows. */
export function ledgerFileName(format: Exclude<LedgerFormat, "json">, now: number): string {
  return `anxin-ledger-${day(now)}.${format}`;
}
