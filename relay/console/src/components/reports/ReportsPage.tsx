// (being built) Reports: false alarms, incident counts, time to confirmation.
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { Placeholder } from "../Placeholder";

export function ReportsPage({ user }: { user: User }) {
  const t = useT();
  void user;
  return <Placeholder text={t("placeholder.reports")} />;
}
