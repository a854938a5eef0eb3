// The sign-in page: language switch only; the form posts to the gateway without script.
import { setupLanguageSwitch } from "./i18n.js";

setupLanguageSwitch();
document.getElementById("key")?.focus();
