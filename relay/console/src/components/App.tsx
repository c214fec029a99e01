import { useSession } from "../session";
import { useT } from "../i18n";
import { Shell } from "./Shell";
import { SignIn } from "./SignIn";

/** The sign-in page or the signed-in console, by the session's state. */
export function App() {
  const t = useT();
  const { state, signIn, signOut } = useSession();
  if (state.status === "loading") return <p class="loading">{t("app.loading")}</p>;
  if (state.status === "signedOut") return <SignIn reason={state.reason} initialError={state.error} onSignIn={signIn} />;
  return <Shell session={state.session} onSignOut={signOut} />;
}
