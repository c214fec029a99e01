// The translation catalogues: the shell's own (locales/<lang>.json) and one file per page
// (locales/<lang>/<page>.json), merged key by key so each page keeps its words beside the others'.
import en from "../locales/en.json" with { type: "json" };
import enHomes from "../locales/en/homes.json" with { type: "json" };
import enIncident from "../locales/en/incident.json" with { type: "json" };
import enReports from "../locales/en/reports.json" with { type: "json" };
import enStills from "../locales/en/stills.json" with { type: "json" };
import zhCN from "../locales/zh-CN.json" with { type: "json" };
import zhHomes from "../locales/zh-CN/homes.json" with { type: "json" };
import zhIncident from "../locales/zh-CN/incident.json" with { type: "json" };
import zhReports from "../locales/zh-CN/reports.json" with { type: "json" };
import zhStills from "../locales/zh-CN/stills.json" with { type: "json" };

type Catalogue = { [key: string]: string | Catalogue };

/** Deep merge; a key defined twice with different values is a mistake in the catalogues and fails the build's tests. */
export function mergeCatalogues(...parts: Catalogue[]): Catalogue {
  const out: Catalogue = {};
  for (const part of parts) {
    for (const [k, v] of Object.entries(part)) {
      const have = out[k];
      if (typeof v === "object" && typeof have === "object") out[k] = mergeCatalogues(have, v);
      else if (have !== undefined && have !== v) throw new Error(`translation key ${k} defined twice`);
      else out[k] = v;
    }
  }
  return out;
}

export const CATALOGUES = {
  "zh-CN": mergeCatalogues(zhCN, zhIncident, zhHomes, zhReports, zhStills),
  en: mergeCatalogues(en, enIncident, enHomes, enReports, enStills),
};
