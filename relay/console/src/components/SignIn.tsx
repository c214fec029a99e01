import { useState } from "preact/hooks";
import { useT } from "../i18n";
import type { SignedOutReason } from "../session";
import { ErrorBanner } from "./ErrorBanner";
import { LanguageSwitch } from "./LanguageSwitch";

interface Props {
  reason: SignedOutReason;
  initialError?: unknown;
  onSignIn: (username: string, password: string) => Promise<void>;
}

export function SignIn({ reason, initialError, onSignIn }: Props) {
  const t = useT();
  const [username, setUsername] = useState("");
  const [password, setPassword] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(initialError);

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      await onSignIn(username, password);
    } catch (err) {
      setError(err);
      setPassword(""); // a wrong password is typed again, not corrected
      setBusy(false);
    }
  };

  return (
    <div class="signin-page">
      <header class="signin-top">
        <span class="brand">{t("app.name")}</span>
        <LanguageSwitch />
      </header>
      <main class="signin-card">
        <h1>{t("signIn.heading")}</h1>
        {reason !== "none" && error === undefined && (
          <p class="banner banner-info" role="status" data-testid="notice">
            {t(reason === "session_expired" ? "signIn.expired" : "signIn.signedOut")}
          </p>
        )}
        <ErrorBanner error={error} />
        <form onSubmit={(e) => void submit(e)}>
          <label>
            {t("signIn.username")}
            <input name="username" autocomplete="username" required value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
          </label>
          <label>
            {t("signIn.password")}
            <input name="password" type="password" autocomplete="current-password" required value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
          </label>
          <button type="submit" class="primary" disabled={busy}>
            {t(busy ? "signIn.submitting" : "signIn.submit")}
          </button>
        </form>
      </main>
    </div>
  );
}
