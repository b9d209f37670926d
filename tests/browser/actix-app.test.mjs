// The demo page in Chromium against examples/actix-app; see demo.mjs.
import { demoPage } from "./demo.mjs";

demoPage("actix-app");
