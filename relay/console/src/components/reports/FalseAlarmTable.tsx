// A false-alarm table: one row per home or device model, most false alarms first. Long lists show their
// first rows until the operator asks for all of them.
import { useState } from "preact/hooks";
import type { RateCounts } from "../../api/reports";
import { useT } from "../../i18n";
import { formatCount, formatRate, formatReasons } from "../../reports/format";

export interface RateRow extends RateCounts {
  key: string;
  /** What the first column shows. */
  name: string;
  /** A second line under the name (e.g. the hub id), if any. */
  detail?: string;
}

const FIRST_ROWS = 20;
const COLUMNS = ["incidents", "falseAlarms", "rate", "reasons"] as const;

export function FalseAlarmTable({ rows, nameColumn, testId }: { rows: RateRow[]; nameColumn: string; testId: string }) {
  const t = useT();
  const [all, setAll] = useState(false);
  const shown = all ? rows : rows.slice(0, FIRST_ROWS);
  return (
    <>
      <table class="report-table" data-testid={testId}>
        <thead>
          <tr>
            <th scope="col" data-col="name">
              {nameColumn}
            </th>
            {COLUMNS.map((c) => (
              <th key={c} scope="col" data-col={c}>
                {t(`reports.falseAlarms.col.${c}`)}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {shown.map((r) => (
            <tr key={r.key} data-key={r.key}>
              <th scope="row" data-col="name">
                {r.name}
                {r.detail !== undefined && <span class="report-detail">{r.detail}</span>}
              </th>
              <td data-col="incidents">{formatCount(r.incidents)}</td>
              <td data-col="falseAlarms">{formatCount(r.falseAlarms)}</td>
              <td data-col="rate">{formatRate(r.rate)}</td>
              <td data-col="reasons">{formatReasons(t, r.reasons)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {rows.length > FIRST_ROWS && (
        <button type="button" class="report-more" onClick={() => setAll(!all)}>
          {all ? t("reports.showFewer", { count: FIRST_ROWS }) : t("reports.showAll", { count: rows.length })}
        </button>
      )}
    </>
  );
}
