// Every visible word comes from the catalogues in ../locales; the chosen language is remembered per browser.
import i18next, { type TFunction } from "i18next";
import { useEffect, useState } from "preact/hooks";
import { CATALOGUES } from "./locales";

export const LANGUAGES = ["zh-CN", "en"] as const;
export type Language = (typeof LANGUAGES)[number];
const DEFAULT_LANGUAGE: Language = "zh-CN";
const STORAGE_KEY = "anxin.console.language";

const i18n = i18next.createInstance();

function storedLanguage(): Language {
  try {
    const v = localStorage.getItem(STORAGE_KEY);
    return LANGUAGES.find((l) => l === v) ?? DEFAULT_LANGUAGE;
  } catch {
    return DEFAULT_LANGUAGE; // storage disabled: the default still works
  }
}

/** Synchronous: the catalogues are bundled, so the first render is already translated. */
export function initI18n(): void {
  void i18n.init({
    lng: storedLanguage(),
    fallbackLng: DEFAULT_LANGUAGE,
    supportedLngs: [...LANGUAGES],
    resources: { "zh-CN": { translation: CATALOGUES["zh-CN"] }, en: { translation: CATALOGUES.en } },
    initAsync: false,
    // Preact escapes text itself; escaping here would show "&#39;" in names.
    interpolation: { escapeValue: false },
  });
  applyToDocument();
  i18n.on("languageChanged", applyToDocument);
}

function applyToDocument(): void {
  document.documentElement.lang = i18n.language;
  document.title = i18n.t("app.title");
}

export function currentLanguage(): Language {
  return LANGUAGES.find((l) => l === i18n.language) ?? DEFAULT_LANGUAGE;
}

export function setLanguage(lang: Language): void {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // not remembered, but switched for this page
  }
  void i18n.changeLanguage(lang);
}

/** The translate function; the component re-renders when the language changes. */
export function useT(): TFunction {
  const [, setLang] = useState(i18n.language);
  useEffect(() => {
    const onChange = (lng: string) => setLang(lng);
    i18n.on("languageChanged", onChange);
    return () => i18n.off("languageChanged", onChange);
  }, []);
  return i18n.t;
}

/** Whether the catalogues have this key (in the current language or the fallback). */
export function hasTranslation(key: string): boolean {
  return i18n.exists(key);
}

/** A translated code from a known family (type, state, severity, role), or the family's "unknown" text. */
export function tCode(t: TFunction, family: string, code: string): string {
  const key = `${family}.${code}`;
  return i18n.exists(key) ? t(key) : t(`${family}.unknown`, { code });
}
