// The period: the last 7, 30 or 90 days, or from one date to another (both days included).
import { useState } from "preact/hooks";
import { useT } from "../../i18n";
import { PRESET_DAYS, type PeriodChoice } from "../../reports/period";

interface Props {
  choice: PeriodChoice;
  /** The dates the from–to form starts with. */
  initialRange: { from: string; to: string };
  onChoose: (choice: PeriodChoice) => void;
}

export function PeriodPicker({ choice, initialRange, onChoose }: Props) {
  const t = useT();
  const [from, setFrom] = useState(initialRange.from);
  const [to, setTo] = useState(initialRange.to);
  return (
    <div class="report-period" role="group" aria-label={t("reports.period.label")}>
      <div class="report-presets">
        {PRESET_DAYS.map((days) => (
          <button key={days} type="button" aria-pressed={choice.kind === "last" && choice.days === days} data-days={days} onClick={() => onChoose({ kind: "last", days })}>
            {t("reports.period.last", { count: days })}
          </button>
        ))}
      </div>
      <form
        class="report-range"
        onSubmit={(e) => {
          e.preventDefault();
          onChoose({ kind: "range", from, to });
        }}
      >
        <label>
          {t("reports.period.from")}
          <input type="date" value={from} required onInput={(e) => setFrom(e.currentTarget.value)} data-testid="period-from" />
        </label>
        <label>
          {t("reports.period.to")}
          <input type="date" value={to} required onInput={(e) => setTo(e.currentTarget.value)} data-testid="period-to" />
        </label>
        <button type="submit" aria-pressed={choice.kind === "range"}>
          {t("reports.period.show")}
        </button>
      </form>
    </div>
  );
}
