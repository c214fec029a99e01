// (being built) One incident: timeline, call tree, lifecycle actions, care plan, stills.
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { Placeholder } from "../Placeholder";

export function IncidentPage({ id, user }: { id: string; user: User }) {
  const t = useT();
  void user;
  return <Placeholder text={t("placeholder.incident", { id })} />;
}
