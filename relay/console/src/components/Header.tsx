import type { User } from "../api/types";
import { tCode, useT } from "../i18n";
import { LanguageSwitch } from "./LanguageSwitch";

export function Header({ user, onSignOut }: { user: User; onSignOut: () => void }) {
  const t = useT();
  return (
    <header class="app-header">
      <span class="brand">{t("app.name")}</span>
      <span class="who" data-testid="who">
        {t("header.signedInAs", { name: user.displayName, role: tCode(t, "role", user.role) })}
      </span>
      <LanguageSwitch />
      <button type="button" class="sign-out" onClick={onSignOut}>
        {t("header.signOut")}
      </button>
    </header>
  );
}
