// The demo page in Chromium against examples/axum-app; see demo.mjs.
import { demoPage } from "./demo.mjs";

demoPage("axum-app");
