// The web UI in a real browser: Debian's chromium driven by playwright-core (from the UI's
// npm packages, NODE_PATH), one scenario per run, against the mvirt-web and daemon that
// test_web_ui.py started. Screenshots of each page go to OUT_DIR.
//   node web_ui.cjs SCENARIO BASE_URL TOKEN OUT_DIR '{"kernel": ...}'
// Exit 0 when every check held; else the failed check on stderr, a failure screenshot, exit 1.
"use strict";
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const assert = require("node:assert/strict");
const { chromium } = require("playwright-core");

const [scenario, base, token, outDir, extraJson] = process.argv.slice(2);
const extra = JSON.parse(extraJson || "{}");
const shot = (page, name) => page.screenshot({ path: path.join(outDir, `${name}.png`), fullPage: true });

async function login(page) {
  await page.goto(base);
  await page.fill("#token", token);
  await page.click("button[type=submit]");
  await page.waitForSelector("#vms");
}

const scenarios = {
  // Nothing but the login page without a session; a wrong token is told; the right one in.
  async login(page) {
    await page.goto(base);
    await page.waitForSelector("#token");
    await shot(page, "login");
    for (const p of ["app.js", "index.html", "api/session"]) {
      const res = await page.request.get(base + p);
      assert.equal(res.status(), 401, `${p} without a session`);
    }
    const res = await page.request.post(base + "api/call/mvirt.VmService/ListVms", { data: "" });
    assert.equal(res.status(), 401, "an API call without a session");
    await page.fill("#token", "wrong");
    await page.click("button[type=submit]");
    await page.waitForSelector("#error:not([hidden])");
    assert.match(await page.textContent("#error"), /wrong token/);
    await page.fill("#token", token);
    await page.click("button[type=submit]");
    await page.waitForSelector("#vms");
    await shot(page, "vms-empty");
  },

  // Create through the form (a bad field first: the daemon's message next to it), start,
  // the console's output, typing and the answer, stop and the badge, live in the list.
  async lifecycle(page) {
    await login(page);
    await page.click("a.button[href='#/create']");
    await page.fill("#name", "web-ui");
    await page.fill("[id='config.memory_mb']", "1");
    await page.fill("[id='config.kernel']", extra.kernel);
    await page.fill("[id='config.cmdline']", 'console=ttyS0 chemu.echo=1 chemu.print="hello-from-guest"');
    await page.click("button[type=submit]");
    const err = page.locator(".field[data-field='config.memory_mb'] .field-error");
    await err.waitFor();
    await page.waitForFunction(() => document.querySelector(".field[data-field='config.memory_mb'] .field-error").textContent !== "");
    assert.match(await err.textContent(), /^config\.memory_mb: .*minimum of 64 MiB/);
    await shot(page, "create-error");
    await page.fill("[id='config.memory_mb']", "128");
    await page.click("button[type=submit]");
    await page.waitForURL(/#\/vm\/web-ui$/);
    await page.waitForSelector(".badge[data-state=stopped]");
    await page.click("button[data-action=start]");
    await page.waitForSelector(".title .badge[data-state=running]");
    await page.waitForFunction(() => document.querySelector(".xterm-rows")?.innerText.includes("hello-from-guest"));
    await page.click("#terminal");
    await page.keyboard.type("hi there\r");
    await page.waitForFunction(() => document.querySelector(".xterm-rows").innerText.includes("you typed 'hi there'"));
    await shot(page, "vm-running");
    await page.click("button[data-action=stop]");
    await page.waitForSelector(".title .badge[data-state=stopped]", { timeout: 40000 });
    await page.waitForFunction(() => document.querySelector("#console-notice").textContent !== "");
    await shot(page, "vm-stopped");
    // the list: started from here, its badge changes live (WatchVms), no reload
    await page.click("nav a[href='#/']");
    const row = page.locator("tr[data-vm='web-ui']");
    await row.locator(".badge[data-state=stopped]").waitFor();
    await row.locator("button[data-action=start]").click();
    await row.locator(".badge[data-state=running]").waitFor();
    await shot(page, "vms");
    await page.setViewportSize({ width: 390, height: 800 });
    await shot(page, "vms-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    // stop and delete from the list (the delete asks first)
    await row.locator("button[data-action=stop]").click();
    await row.locator(".badge[data-state=stopped]").waitFor({ timeout: 40000 });
    page.once("dialog", (d) => d.accept());
    await row.locator("button[data-action=delete]").click();
    await row.waitFor({ state: "detached" });
  },
};

(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mvchromium-"));
  const ctx = await chromium.launchPersistentContext(dir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    viewport: { width: 1280, height: 860 },
  });
  const page = ctx.pages()[0] || (await ctx.newPage());
  page.setDefaultTimeout(20000);
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  let rc = 0;
  try {
    await scenarios[scenario](page);
    assert.deepEqual(errors, [], "script errors in the page");
  } catch (e) {
    rc = 1;
    console.error(`${scenario}: ${e.message}`);
    await shot(page, `${scenario}-failure`).catch(() => {});
  } finally {
    await ctx.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
  process.exit(rc);
})();
