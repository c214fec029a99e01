// Reports: false alarms per home and per device model, incident counts and time to confirmation per type,
// over a period the operator picks; each chart has its table beside it.
import { useMemo, useState } from "preact/hooks";
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { formatPeriod } from "../../reports/format";
import { dayValue, periodOf, type PeriodChoice } from "../../reports/period";
import { useReport } from "../../reports/useReport";
import { ErrorBanner } from "../ErrorBanner";
import { FalseAlarmSection } from "./FalseAlarmSection";
import { PeriodPicker } from "./PeriodPicker";
import { TypeSection } from "./TypeSection";

const DEFAULT_CHOICE: PeriodChoice = { kind: "last", days: 30 };

export function ReportsPage({ user }: { user: User }) {
  const t = useT();
  const [choice, setChoice] = useState<PeriodChoice>(DEFAULT_CHOICE);
  // "The last 30 days" ends when it was chosen (or refreshed), so the figures hold still while being read.
  const [chosenAt, setChosenAt] = useState(() => Date.now());
  const initialRange = useMemo(() => ({ from: dayValue(new Date(chosenAt - 29 * 86_400_000)), to: dayValue(new Date(chosenAt)) }), []);
  const period = useMemo(() => periodOf(choice, chosenAt), [choice, chosenAt]);
  const valid = "error" in period ? undefined : period;
  const { report, loading, error } = useReport(valid);
  const choose = (c: PeriodChoice) => {
    setChoice(c);
    setChosenAt(Date.now());
  };
  // Only operators and admins reach this page's data; anyone else gets the server's refusal, translated.
  void user;

  return (
    <section class="reports-page" aria-busy={loading}>
      <div class="reports-head">
        <h1>{t("reports.heading")}</h1>
        <button type="button" onClick={() => setChosenAt(Date.now())} disabled={loading}>
          {t("reports.refresh")}
        </button>
      </div>
      <PeriodPicker choice={choice} initialRange={initialRange} onChoose={choose} />
      {"error" in period && (
        <p class="banner banner-error" role="alert" data-testid="period-error">
          {t(`reports.period.${period.error}`)}
        </p>
      )}
      <ErrorBanner error={error} />
      {report && (
        <p class="report-scope" data-testid="report-period">
          {formatPeriod(t, report.since, report.until)}
          {report.streets && <span class="report-streets">{t("reports.streetsOnly", { streets: report.streets.join(t("reports.listSeparator")) })}</span>}
        </p>
      )}
      {loading && !report && <p class="loading">{t("reports.loading")}</p>}
      {report && (
        <div class={loading ? "report-body report-stale" : "report-body"} data-testid="report">
          <TypeSection rows={report.byType} />
          <FalseAlarmSection perHome={report.falseAlarms.perHome} perDeviceModel={report.falseAlarms.perDeviceModel} />
        </div>
      )}
    </section>
  );
}
