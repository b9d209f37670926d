// The demo page and the cookie transport, end to end in a real browser:
// Debian's headless Chromium driven by playwright-core, against an example
// app. axum-app.test.mjs and actix-app.test.mjs run it against each, in
// parallel. Run with `npm test` in this folder (it installs playwright-core
// from the lockfile first when missing), or `bash .ci/run`.
//
// Each app is built with cargo and started on a free port of 127.0.0.1; the
// browser opens it as http://localhost:<port>, which Chromium treats as a
// secure context, so it keeps the `Secure` `__Secure-` cookie over plain HTTP.
// Screenshots land in ./screenshots/ (gitignored).

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, execFileSync } from "node:child_process";
import { createServer, request as httpRequest } from "node:http";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const SHOTS = fileURLToPath(new URL("./screenshots/", import.meta.url));
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const ACCESS_TTL = 3; // seconds: expiry happens within the test
const PASSWORD = "correct horse battery staple";
const COOKIE = "__Secure-reissue-rt";
const US = "216.160.83.56"; // outside the allowed countries of the test GeoIP database

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let browser;
let targetDir;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  assert.ok(existsSync(CHROMIUM), `no Chromium at ${CHROMIUM}: apt-get install chromium`);
  // A no-op when .ci/run (or the developer) already built them.
  execFileSync("cargo", ["build", "--quiet", "-p", "axum-app", "-p", "actix-app"], {
    cwd: ROOT,
    stdio: "inherit",
  });
  const meta = JSON.parse(
    execFileSync("cargo", ["metadata", "--format-version", "1", "--no-deps"], { cwd: ROOT }),
  );
  targetDir = meta.target_directory;
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
});

after(async () => {
  await browser?.close();
});

/** Starts an example app on a free port; resolves once it prints its address. */
function startApp(name) {
  const dir = mkdtempSync(join(tmpdir(), `reissue-browser-${name}-`));
  // A clean environment: CI's DATABASE_URL / REDIS_URL are for the Rust suite.
  const env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME || dir,
    RUST_LOG: "warn",
    REISSUE_ADDR: "127.0.0.1:0",
    DATABASE_URL: `sqlite://${join(dir, "users.sqlite")}`,
    REISSUE_JWT_SECRET: "browser-test-secret-0123456789abcdef-0123456789",
    REISSUE_ACCESS_TTL: String(ACCESS_TTL),
    REISSUE_LOGIN_MAX_FAILURES: "3",
    REISSUE_TRUSTED_PROXIES: "127.0.0.1/32",
    REISSUE_GEOIP_DB: join(ROOT, "crates/reissue-test-support/data/test-countries.mmdb"),
    REISSUE_ALLOWED_COUNTRIES: "SE,GB",
  };
  const child = spawn(join(targetDir, "debug", name), [], { env, stdio: ["ignore", "pipe", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => { stderr += d; });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${name} did not start: ${stderr}`)), 30000);
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const m = out.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
      if (m) {
        clearTimeout(timer);
        resolve({
          port: Number(m[1]),
          base: `http://localhost:${m[1]}`,
          stop() { child.kill("SIGTERM"); rmSync(dir, { recursive: true, force: true }); },
        });
      }
    });
    child.on("exit", (code) => reject(new Error(`${name} exited with ${code}: ${stderr}`)));
  });
}

/** A page on another origin of the same site (another port of localhost). */
function startAttacker(appBase) {
  const html = `<!doctype html><title>another site</title><body><h1>A page on another origin</h1>
<form id="f" method="POST" action="${appBase}/auth/logout"><button>log you out</button></form>
<script>
window.attack = async () => {
  const out = {};
  // A "simple" request: the browser sends it (and, same-site, the cookie) without asking.
  await fetch("${appBase}/auth/reissue", { method: "POST", credentials: "include", mode: "no-cors" });
  // With the transport header the browser must ask first (CORS preflight): the app says no.
  try {
    await fetch("${appBase}/auth/reissue", { method: "POST", credentials: "include",
      headers: { "X-Reissue-Transport": "cookie" } });
    out.withHeader = "sent";
  } catch (e) { out.withHeader = "blocked by the browser"; }
  return out;
};
</script>`;
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html" });
    res.end(html);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({ port: server.address().port, close: () => server.close() }));
  });
}

/**
 * A reverse proxy to the app that holds each /auth/reissue answer back for
 * `delay` ms: two tabs refreshing at once would then certainly overlap, and
 * present the same refresh token, unless the page makes them take turns.
 */
function startSlowProxy(appPort, delay) {
  const server = createServer((req, res) => {
    const upstream = httpRequest(
      { host: "127.0.0.1", port: appPort, method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        setTimeout(() => {
          res.writeHead(answer.statusCode, answer.rawHeaders);
          answer.pipe(res);
        }, req.url === "/auth/reissue" ? delay : 0);
      },
    );
    upstream.on("error", () => { res.writeHead(502); res.end(); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => resolve({
      base: `http://localhost:${server.address().port}`,
      close: () => { server.closeAllConnections(); server.close(); },
    }));
  });
}

async function newContext(extra = {}) {
  return browser.newContext({ viewport: { width: 1100, height: 900 }, ...extra });
}

/** Every /auth/reissue response a page gets, with the cookie its request carried. */
function watchReissues(page) {
  const seen = [];
  page.on("response", (res) => {
    if (!res.url().endsWith("/auth/reissue")) return;
    seen.push(res.request().allHeaders().then((h) => ({ status: res.status(), cookie: h.cookie || "" })));
  });
  return { count: () => seen.length, since: (n) => Promise.all(seen.slice(n)) };
}

async function refreshCookie(context) {
  return (await context.cookies()).find((c) => c.name === COOKIE);
}

async function signedIn(page, email) {
  await page.waitForSelector('#who[data-state="in"]');
  await page.waitForFunction((e) => document.getElementById("me-email").textContent === e, email);
}

async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function waitForExpiry() {
  await sleep(ACCESS_TTL * 1000 + 500);
}

/** The whole scenario against the example app `app` (its cargo package name). */
export function demoPage(app) {
  test(`${app}: the demo page in Chromium`, async (t) => {
    const server = await startApp(app);
    const contexts = [];
    t.after(async () => {
      for (const c of contexts) await c.close();
      server.stop();
    });
    const ctx = await newContext();
    contexts.push(ctx);
    const page = await ctx.newPage();
    const errors = [];
    page.on("pageerror", (e) => errors.push(e.message));
    const reissues = watchReissues(page);
    const email = `ada-${app}@example.com`;

    await t.test("signed out at first, and a secure context on http://localhost", async () => {
      await page.goto(server.base + "/");
      await page.waitForSelector('#who[data-state="out"]');
      assert.equal(await page.evaluate(() => window.isSecureContext), true);
      assert.equal(await page.isVisible("#insecure"), false);
      await shot(page, `${app}-1-signed-out`);
    });

    await t.test("sign up and log in: the cookie's attributes", async () => {
      await page.fill("#email", email);
      await page.fill("#password", PASSWORD);
      await page.click("#signup");
      await signedIn(page, email);
      const c = await refreshCookie(ctx);
      assert.ok(c, "the login set the refresh cookie");
      assert.equal(c.httpOnly, true);
      assert.equal(c.secure, true);
      assert.equal(c.sameSite, "Strict");
      assert.equal(c.path, "/auth");
      assert.equal(c.domain, "localhost", "host-only: no Domain attribute");
      const left = c.expires - Date.now() / 1000;
      assert.ok(Math.abs(left - 1209600) < 120, `Max-Age = the refresh lifetime, got ${left} s`);
      // Page scripts can reach neither token.
      const visible = await page.evaluate(() => ({
        cookie: document.cookie,
        stored: JSON.stringify({ ...localStorage }) + JSON.stringify({ ...sessionStorage }),
      }));
      assert.ok(!visible.cookie.includes(COOKIE), "HttpOnly: not in document.cookie");
      assert.equal(visible.stored, "{}{}", "nothing in web storage");
      await page.waitForSelector("#sessions tr .badge");
      await shot(page, `${app}-2-signed-in`);
    });

    const sid = await page.textContent("#me-sid");

    await t.test("the access token expires and is renewed from the cookie", async () => {
      const before = (await refreshCookie(ctx)).value;
      const n = reissues.count();
      await waitForExpiry();
      const renewed = page.waitForResponse((r) => r.url().endsWith("/auth/reissue"));
      await page.click("#load-me");
      assert.equal((await renewed).status(), 200);
      await page.waitForFunction(() => document.getElementById("log").textContent.includes("renewed (it had expired)"));
      assert.equal((await reissues.since(n)).length, 1);
      assert.notEqual((await refreshCookie(ctx)).value, before, "the reissue rotated the cookie");
      assert.equal(await page.textContent("#me-sid"), sid, "the same session");
    });

    await t.test("two tabs refresh at once: one at a time, both keep working", async () => {
      // Both tabs on the slow proxy's origin (the cookie, host-only, goes to
      // any port of localhost; the lock is per origin).
      const slow = await startSlowProxy(server.port, 300);
      t.after(() => slow.close());
      const tabs = [await ctx.newPage(), await ctx.newPage()];
      const watched = tabs.map((p) => {
        p.on("pageerror", (e) => errors.push(e.message));
        return watchReissues(p);
      });
      for (const p of tabs) {
        await p.goto(slow.base + "/");
        await signedIn(p, email); // a new tab signs in from the cookie
      }
      await waitForExpiry();
      const counts = watched.map((w) => w.count());
      const me = (p) => p.waitForResponse((r) => r.url().endsWith("/me"));
      const done = Promise.all(tabs.map(me));
      // Both tabs click at the same instant of the browser's clock.
      const at = Date.now() + 300;
      const clickAt = (when) => setTimeout(() => document.getElementById("load-me").click(), when - Date.now());
      await Promise.all(tabs.map((p) => p.evaluate(clickAt, at)));
      assert.deepEqual((await done).map((r) => r.status()), [200, 200]);
      const both = (await Promise.all(watched.map((w, i) => w.since(counts[i])))).flat();
      assert.deepEqual(both.map((r) => r.status), [200, 200], "one reissue per tab, no 401");
      // Web Locks: the second tab waited and spent the cookie the first one left.
      assert.notEqual(both[0].cookie, both[1].cookie, "the tabs presented the same refresh token");
      for (const p of tabs) {
        assert.equal(await p.getAttribute("#who", "data-state"), "in");
        assert.equal(await p.textContent("#me-sid"), sid);
        assert.equal(await p.isVisible("#me-msg"), false, "no error shown");
      }
      await shot(tabs[1], `${app}-3-second-tab`);
      for (const p of tabs) await p.close();
      // Nothing was revoked: the session still renews, in the first tab too.
      const again = page.waitForResponse((r) => r.url().endsWith("/auth/reissue"));
      await page.click("#load-me");
      assert.equal((await again).status(), 200);
    });

    // A second tab of the app's own origin, to see a logout reach it.
    const tab2 = await ctx.newPage();
    tab2.on("pageerror", (e) => errors.push(e.message));
    await tab2.goto(server.base + "/");
    await signedIn(tab2, email);

    const device = await newContext({ userAgent: "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1" });
    contexts.push(device);
    const phone = await device.newPage();

    await t.test("the sessions list: this device, another device, revoke", async () => {
      await phone.goto(server.base + "/");
      await phone.waitForSelector('#who[data-state="out"]');
      await phone.fill("#email", email);
      await phone.fill("#password", PASSWORD);
      await phone.click("#login");
      await signedIn(phone, email);
      await page.click("#load-sessions");
      await page.waitForFunction(() => document.querySelectorAll("#sessions tr").length === 2);
      const rows = await page.$$eval("#sessions tr", (trs) => trs.map((tr) => ({
        sid: tr.dataset.sid, text: tr.textContent, revoke: !!tr.querySelector("button"),
      })));
      const mine = rows.filter((r) => r.text.includes("this device"));
      assert.equal(mine.length, 1);
      assert.equal(mine[0].sid, sid);
      assert.equal(mine[0].revoke, false, "no revoke button on this device");
      const other = rows.find((r) => r.sid !== sid);
      assert.ok(other.text.includes("iOS"), other.text);
      await shot(page, `${app}-4-sessions`);
      await page.click(`#sessions tr[data-sid="${other.sid}"] button`);
      await page.waitForFunction(() => document.querySelectorAll("#sessions tr").length === 1);
      // The phone finds out when its access token has expired and the
      // refresh fails (at once, where the revocation mode refuses it sooner).
      await waitForExpiry();
      await phone.click("#load-me");
      await phone.waitForSelector('#who[data-state="out"]');
      const msg = await phone.textContent("#account-msg");
      assert.match(msg, /session has ended/);
      assert.equal(await refreshCookie(device), undefined, "the failed reissue removed the phone's cookie");
      await shot(phone, `${app}-5-ended-elsewhere`);
    });

    await t.test("a cross-site attempt is refused and leaves the session alone", async () => {
      const evil = await startAttacker(server.base);
      t.after(() => evil.close());
      const before = (await refreshCookie(ctx)).value;
      const posts = (p) => {
        const seen = [];
        p.on("response", (r) => {
          if (r.url().startsWith(server.base) && r.request().method() === "POST") {
            seen.push([new URL(r.url()).pathname, r.status()]);
          }
        });
        return seen;
      };
      // Same site (localhost), another origin (port): SameSite=Strict lets the
      // cookie through, so the server's own checks are what refuse it.
      const attacker = await ctx.newPage();
      const seen = posts(attacker);
      await attacker.goto(`http://localhost:${evil.port}/`);
      const out = await attacker.evaluate(() => window.attack());
      assert.equal(out.withHeader, "blocked by the browser");
      // A classic CSRF form post to logout: 403, and no logout.
      const [nav] = await Promise.all([
        attacker.waitForResponse((r) => r.url() === server.base + "/auth/logout"),
        attacker.click("#f button"),
      ]);
      assert.equal(nav.status(), 403);
      assert.match(await attacker.textContent("body"), /access_denied/);
      assert.deepEqual(seen, [["/auth/reissue", 403], ["/auth/logout", 403]]);
      await shot(attacker, `${app}-6-cross-site-refused`);
      await attacker.close();
      // Another site entirely (127.0.0.1 is not localhost): the browser
      // withholds the cookie, so the server sees no credentials at all.
      const far = await ctx.newPage();
      const farSeen = posts(far);
      await far.goto(`http://127.0.0.1:${evil.port}/`);
      await far.evaluate(() => window.attack());
      assert.deepEqual(farSeen, [["/auth/reissue", 401]]);
      await far.close();
      assert.equal((await refreshCookie(ctx)).value, before, "the cookie is untouched");
      await waitForExpiry();
      const still = page.waitForResponse((r) => r.url().endsWith("/auth/reissue"));
      await page.click("#load-me");
      assert.equal((await still).status(), 200, "the session still works");
    });

    await t.test("readable errors: lockout with its wait, policy refusal", async () => {
      const stranger = await newContext();
      contexts.push(stranger);
      const p = await stranger.newPage();
      await p.goto(server.base + "/");
      await p.waitForSelector('#who[data-state="out"]');
      // Another account: the lockout is per account and network, and the
      // steps below log the first one in again from this network.
      await p.fill("#email", `mallory-${app}@example.com`);
      for (let i = 0; i < 3; i++) {
        await p.fill("#password", "not the password " + i);
        const r = p.waitForResponse((r) => r.url().endsWith("/auth/login"));
        await p.click("#login");
        assert.equal((await r).status(), 401);
        await p.waitForFunction(() => document.getElementById("account-msg").textContent.includes("Wrong email or password"));
      }
      await p.fill("#password", PASSWORD);
      const locked = p.waitForResponse((r) => r.url().endsWith("/auth/login"));
      await p.click("#login");
      assert.equal((await locked).status(), 429);
      await p.waitForFunction(() => /Try again in \d+ min/.test(document.getElementById("account-msg").textContent));
      assert.equal(await p.isDisabled("#login"), true, "the button waits out the lockout");
      await shot(p, `${app}-7-lockout`);

      const abroad = await newContext({ extraHTTPHeaders: { "X-Forwarded-For": US } });
      contexts.push(abroad);
      const q = await abroad.newPage();
      await q.goto(server.base + "/");
      await q.waitForSelector('#who[data-state="out"]');
      await q.fill("#email", email);
      await q.fill("#password", PASSWORD);
      const refused = q.waitForResponse((r) => r.url().endsWith("/auth/login"));
      await q.click("#login");
      assert.equal((await refused).status(), 403);
      await q.waitForFunction(() => document.getElementById("account-msg").textContent.includes("Login refused"));
      assert.equal(await refreshCookie(abroad), undefined);
      await shot(q, `${app}-8-policy-refused`);
    });

    await t.test("log out clears the cookie, in every tab", async () => {
      await page.click("#logout");
      await page.waitForSelector('#who[data-state="out"]');
      assert.equal(await refreshCookie(ctx), undefined, "Max-Age=0 removed the cookie");
      await tab2.waitForSelector('#who[data-state="out"]'); // told by BroadcastChannel
      await page.reload();
      await page.waitForFunction(() => document.getElementById("log").textContent.includes("not signed in"));
      assert.equal(await page.getAttribute("#who", "data-state"), "out");
      await shot(page, `${app}-9-logged-out`);
    });

    await t.test("log out everywhere ends the other devices", async () => {
      await page.fill("#email", email);
      await page.fill("#password", PASSWORD);
      await page.click("#login");
      await signedIn(page, email);
      await phone.fill("#email", email);
      await phone.fill("#password", PASSWORD);
      await phone.click("#login");
      await signedIn(phone, email);
      await page.click("#logout-all");
      await page.waitForSelector('#who[data-state="out"]');
      assert.equal(await refreshCookie(ctx), undefined);
      await waitForExpiry(); // the phone's access token dies; its refresh must fail
      await phone.click("#load-me");
      await phone.waitForSelector('#who[data-state="out"]');
      assert.match(await phone.textContent("#account-msg"), /session has ended/);
    });

    assert.deepEqual(errors, [], "no script errors on the page");
  });
}
