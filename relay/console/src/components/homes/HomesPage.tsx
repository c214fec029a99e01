// (being built) The homes board and the operator alerts.
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { Placeholder } from "../Placeholder";

export function HomesPage({ user }: { user: User }) {
  const t = useT();
  void user;
  return <Placeholder text={t("placeholder.homes")} />;
}
