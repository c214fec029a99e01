// Incidents per type over the period: how many, how many confirmed and found false, and how long
// confirmation took (median and 90th percentile, from receipt to confirmation).
import type { TypeRow } from "../../api/reports";
import { tCode, useT } from "../../i18n";
import { formatCount, formatDuration } from "../../reports/format";
import { BarChart } from "./BarChart";

const COLUMNS = ["type", "incidents", "confirmed", "falseAlarms", "median", "p90"] as const;

export function TypeSection({ rows }: { rows: TypeRow[] }) {
  const t = useT();
  const names = rows.map((r) => tCode(t, "type", r.type));
  const timed = rows.filter((r) => r.medianMs !== null);
  return (
    <section class="report-section" aria-labelledby="report-types-heading">
      <h2 id="report-types-heading">{t("reports.types.heading")}</h2>
      <p class="report-note">{t("reports.types.note")}</p>
      {rows.length === 0 ? (
        <p class="empty">{t("reports.types.empty")}</p>
      ) : (
        <>
          <table class="report-table" data-testid="report-types">
            <thead>
              <tr>
                {COLUMNS.map((c) => (
                  <th key={c} scope="col" data-col={c}>
                    {t(`reports.types.col.${c}`)}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr key={r.type} data-type={r.type}>
                  <th scope="row" data-col="type">
                    {names[i]}
                  </th>
                  <td data-col="incidents">{formatCount(r.incidents)}</td>
                  <td data-col="confirmed">{formatCount(r.confirmed)}</td>
                  <td data-col="falseAlarms">{formatCount(r.falseAlarms)}</td>
                  <td data-col="median">{formatDuration(t, r.medianMs)}</td>
                  <td data-col="p90">{formatDuration(t, r.p90Ms)}</td>
                </tr>
              ))}
            </tbody>
          </table>
          <div class="report-charts">
            <BarChart
              title={t("reports.types.chartCounts")}
              testId="chart-type-counts"
              labels={names}
              series={[{ label: t("reports.types.col.incidents"), data: rows.map((r) => r.incidents), look: "solid" }]}
              format={formatCount}
              integers
            />
            {timed.length > 0 && (
              <BarChart
                title={t("reports.types.chartTimes")}
                testId="chart-type-times"
                labels={timed.map((r) => tCode(t, "type", r.type))}
                series={[
                  { label: t("reports.types.col.median"), data: timed.map((r) => r.medianMs ?? 0), look: "solid" },
                  { label: t("reports.types.col.p90"), data: timed.map((r) => r.p90Ms ?? 0), look: "outline" },
                ]}
                format={(ms) => formatDuration(t, ms)}
              />
            )}
          </div>
        </>
      )}
    </section>
  );
}
