import { currentLanguage, LANGUAGES, setLanguage, useT } from "../i18n";

/** Each language named in itself, so it can be found whichever one is showing. */
export function LanguageSwitch() {
  const t = useT();
  const lang = currentLanguage();
  return (
    <div class="lang-switch" role="group" aria-label={t("lang.label")}>
      {LANGUAGES.map((l) => (
        <button key={l} type="button" lang={l} data-lang={l} aria-pressed={l === lang} onClick={() => setLanguage(l)}>
          {t(`lang.${l}`)}
        </button>
      ))}
    </div>
  );
}
