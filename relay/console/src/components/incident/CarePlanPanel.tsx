// The care plan beside the incident: whom to call and how, masked. Showing the elder's and contacts' full
// details is one click, which the relay records in the audit log before answering; the panel then says so.
import { useEffect, useState } from "preact/hooks";
import { getMaskedCarePlan, revealCarePlan, type MaskedCarePlan, type RevealedCarePlan } from "../../api/incident";
import type { User } from "../../api/types";
import { useT } from "../../i18n";
import { formatClock } from "../../incident/format";
import { ErrorBanner } from "../ErrorBanner";
import { tIncident } from "./words";

interface Person {
  key: string;
  role: string;
  name: string;
  phone: string;
  note?: string;
}

export function CarePlanPanel({ id, user }: { id: string; user: User }) {
  const t = useT();
  const [masked, setMasked] = useState<MaskedCarePlan | undefined>(undefined);
  const [revealed, setRevealed] = useState<RevealedCarePlan | undefined>(undefined);
  const [error, setError] = useState<unknown>(undefined);
  const [busy, setBusy] = useState(false);

  useEffect(() => {
    setMasked(undefined);
    setRevealed(undefined);
    getMaskedCarePlan(id).then(setMasked, setError);
  }, [id]);

  const reveal = async () => {
    setBusy(true);
    setError(undefined);
    try {
      setRevealed(await revealCarePlan(id));
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  const plan = masked?.plan;
  return (
    <section class="panel care-plan" data-testid="care-plan" data-view={revealed ? "revealed" : "masked"} aria-labelledby="care-plan-title">
      <h2 id="care-plan-title">{t("incident.care.heading")}</h2>
      <ErrorBanner error={error} />
      {masked && !plan && <p class="muted">{t("incident.care.none")}</p>}
      {plan && !revealed && (
        <>
          <p class="care-mode muted">{t("incident.care.maskedNote")}</p>
          <Elder name={plan.elder.name} phone={plan.elder.phone} address={plan.elder.address} risk={plan.elder.riskLevel} />
          <People
            people={[
              ...plan.contacts.map((c) => ({ key: c.ref, role: c.role, name: c.name, phone: c.phone })),
              { key: "onsite_team", role: "onsite_team", name: plan.onsiteTeam.name, phone: plan.onsiteTeam.phone },
            ]}
          />
          <Dispatch d={plan.dispatch} />
          <button type="button" class="reveal" data-testid="reveal" disabled={busy} onClick={() => void reveal()}>
            {t(busy ? "incident.care.revealing" : "incident.care.reveal")}
          </button>
          <p class="hint">{t("incident.care.revealHint")}</p>
        </>
      )}
      {revealed && (
        <>
          <p class="banner banner-audit" role="status" data-testid="revealed-notice">
            {revealed.revealed.by === `user:${user.username}`
              ? t("incident.care.revealedByYou", { time: formatClock(revealed.revealed.at) })
              : t("incident.care.revealedBy", { name: revealed.revealed.by, time: formatClock(revealed.revealed.at) })}
          </p>
          <Elder name={revealed.plan.elder.name} phone={revealed.plan.elder.phone} address={revealed.plan.elder.address} risk={revealed.plan.elder.riskLevel} />
          <People
            people={[
              ...revealed.plan.contacts.map((c) => ({ key: c.id, role: c.role, name: c.name, phone: c.phone, ...(c.note ? { note: c.note } : {}) })),
              { key: "onsite_team", role: "onsite_team", name: revealed.plan.onsiteTeam.name, phone: revealed.plan.onsiteTeam.phone },
            ]}
          />
          <Dispatch d={revealed.plan.dispatch} />
          <button type="button" data-testid="hide" onClick={() => setRevealed(undefined)}>
            {t("incident.care.hide")}
          </button>
        </>
      )}
    </section>
  );
}

function Elder({ name, phone, address, risk }: { name: string; phone: string; address: string; risk: string }) {
  const t = useT();
  return (
    <dl class="care-elder" data-testid="care-elder">
      <div>
        <dt>{t("incident.care.elder")}</dt>
        <dd>{name}</dd>
      </div>
      <div>
        <dt>{t("incident.care.phone")}</dt>
        <dd class="phone">{phone}</dd>
      </div>
      <div>
        <dt>{t("incident.care.address")}</dt>
        <dd>{address}</dd>
      </div>
      <div>
        <dt>{t("incident.care.risk")}</dt>
        <dd>{tIncident(t, "risk", risk)}</dd>
      </div>
    </dl>
  );
}

function People({ people }: { people: Person[] }) {
  const t = useT();
  return (
    <>
      <h3>{t("incident.care.contacts")}</h3>
      <ol class="care-contacts">
        {people.map((p) => (
          <li key={p.key} data-testid="care-contact" data-ref={p.key}>
            <span class="target-role">{tIncident(t, "contactRole", p.role)}</span> {p.name} <span class="phone">{p.phone}</span>
            {p.note && <span class="muted"> · {p.note}</span>}
          </li>
        ))}
      </ol>
    </>
  );
}

function Dispatch({ d }: { d: { police: string; fire: string; ambulance: string; gasCompany?: string } }) {
  const t = useT();
  return (
    <>
      <h3>{t("incident.care.dispatch")}</h3>
      <p class="care-dispatch">
        {t("incident.care.police")} {d.police} · {t("incident.care.fire")} {d.fire} · {t("incident.care.ambulance")} {d.ambulance}
        {d.gasCompany !== undefined && ` · ${t("incident.care.gasCompany")} ${d.gasCompany}`}
      </p>
    </>
  );
}
