// False alarms per home (masked address, never a name) and per device model, each as a chart of those with
// false alarms (the ten with the most) and a table of every home or model with alarms in the period.
import type { TFunction } from "i18next";
import type { HomeRate, ModelRate } from "../../api/reports";
import { useT } from "../../i18n";
import { formatCount } from "../../reports/format";
import { BarChart } from "./BarChart";
import { FalseAlarmTable, type RateRow } from "./FalseAlarmTable";

const CHART_BARS = 10;

const homeRow = (h: HomeRate): RateRow => ({ ...h, key: h.hub, name: h.home, ...(h.home !== h.hub ? { detail: h.hub } : {}) });
const modelRow = (t: TFunction, m: ModelRate): RateRow => ({ ...m, key: m.model ?? "", name: m.model ?? t("reports.falseAlarms.noModel") });

export function FalseAlarmSection({ perHome, perDeviceModel }: { perHome: HomeRate[]; perDeviceModel: ModelRate[] }) {
  const t = useT();
  return (
    <>
      <RatePart
        id="homes"
        heading={t("reports.falseAlarms.homesHeading")}
        chartTitle={t("reports.falseAlarms.homesChart", { count: CHART_BARS })}
        nameColumn={t("reports.falseAlarms.col.home")}
        rows={perHome.map(homeRow)}
      />
      <RatePart
        id="models"
        heading={t("reports.falseAlarms.modelsHeading")}
        chartTitle={t("reports.falseAlarms.modelsChart", { count: CHART_BARS })}
        nameColumn={t("reports.falseAlarms.col.model")}
        rows={perDeviceModel.map((m) => modelRow(t, m))}
      />
    </>
  );
}

function RatePart({ id, heading, chartTitle, nameColumn, rows }: { id: string; heading: string; chartTitle: string; nameColumn: string; rows: RateRow[] }) {
  const t = useT();
  // The server sorts most false alarms first.
  const charted = rows.filter((r) => r.falseAlarms > 0).slice(0, CHART_BARS);
  return (
    <section class="report-section" aria-labelledby={`report-${id}-heading`}>
      <h2 id={`report-${id}-heading`}>{heading}</h2>
      {rows.length === 0 ? (
        <p class="empty">{t("reports.falseAlarms.empty")}</p>
      ) : (
        <div class="report-pair">
          <FalseAlarmTable rows={rows} nameColumn={nameColumn} testId={`report-${id}`} />
          {charted.length > 0 ? (
            <BarChart
              title={chartTitle}
              testId={`chart-${id}`}
              labels={charted.map((r) => r.name)}
              series={[{ label: t("reports.falseAlarms.col.falseAlarms"), data: charted.map((r) => r.falseAlarms), look: "solid" }]}
              format={formatCount}
              integers
            />
          ) : (
            <p class="empty">{t("reports.falseAlarms.none")}</p>
          )}
        </div>
      )}
    </section>
  );
}
