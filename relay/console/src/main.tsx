// The duty console's entry point: translations first (bundled, synchronous), then the app.
import { render } from "preact";
import { App } from "./components/App";
import { initI18n } from "./i18n";

initI18n();
const root = document.getElementById("app");
if (root) render(<App />, root);
