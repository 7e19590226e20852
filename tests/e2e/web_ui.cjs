// The web UI in a real browser: Debian's chromium driven by playwright-core (from the UI's
// npm packages, NODE_PATH), one scenario per run, against the mvirt-web and daemon that
// test_web_ui.py started. Screenshots of each page go to OUT_DIR.
//   node web_ui.cjs SCENARIO BASE_URL TOKEN OUT_DIR '{"kernel": ...}'
// Exit 0 when every check held; else the failed check on stderr, a failure screenshot, exit 1.
// A scenario that needs the test to act (restart the daemon) prints "ask: WHAT" on stdout and
// waits for a line on stdin.
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

const readline = require("node:readline");
const stdin = readline.createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
async function ask(what) {
  process.stdout.write(`ask: ${what}\n`);
  const { value, done } = await lines.next();
  assert.ok(!done && value === "done", `the test did not ${what}: ${value}`);
}

// The text of a field's error line, once the daemon's answer is there.
async function fieldError(page, form, name) {
  const sel = `${form} .field[data-field='${name}'] .field-error`;
  await page.waitForFunction((s) => document.querySelector(s)?.textContent !== "", sel);
  return page.textContent(sel);
}

async function createVm(page, name, fields) {
  await page.click("nav a[href='#/create']");
  await page.fill("#name", name);
  for (const [id, value] of Object.entries(fields)) await page.fill(`[id='${id}']`, value);
  await page.click("#create button[type=submit]");
  await page.waitForURL(new RegExp(`#/vm/${name}$`));
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
    // autostart is shown, and follows a change made elsewhere (CONFIG_CHANGED) without a reload
    const autostart = () => page.evaluate(() => [...document.querySelectorAll("dl.kv dt")]
      .find((dt) => dt.textContent === "autostart")?.nextElementSibling.textContent);
    assert.equal(await autostart(), "off");
    await ask("set autostart of VM 'web-ui' on, order 2");
    await page.waitForFunction(() => [...document.querySelectorAll("dl.kv dt")]
      .find((dt) => dt.textContent === "autostart")?.nextElementSibling.textContent === "on (order 2)");
    // the history names the change (its reason is still the state's), and empty lists say so
    const hist = await page.$$eval("ol.history li .event", (li) => li.map((x) => x.textContent));
    assert.deepEqual(hist.slice(-2), ["stopped: created", "config changed (stopped)"], hist.join(" | "));
    assert.equal(await page.textContent("#vm-disks"), "No disks.");
    assert.equal(await page.textContent("#vm-nics"), "No NICs.");
    await page.click("button[data-action=start]");
    await page.waitForSelector(".title .badge[data-state=running]");
    await page.waitForFunction(() => document.querySelector(".xterm-rows")?.innerText.includes("hello-from-guest"));
    // xterm's own colours apply (its <style> elements alone would be refused by the CSP)
    assert.equal(await page.evaluate(() => getComputedStyle(document.querySelector(".xterm-rows")).color), "rgb(255, 255, 255)");
    await page.click("#terminal");
    await page.keyboard.type("hi there\r");
    await page.waitForFunction(() => document.querySelector(".xterm-rows").innerText.includes("you typed 'hi there'"));
    await shot(page, "vm-running");
    // a second viewer: the history first, then what either types reaches both
    const second = await page.context().newPage();
    await second.goto(page.url());
    await second.waitForFunction(() => document.querySelector(".xterm-rows")?.innerText.includes("you typed 'hi there'"));
    await second.click("#terminal");
    await second.keyboard.type("from two\r");
    for (const p of [page, second])
      await p.waitForFunction(() => document.querySelector(".xterm-rows").innerText.includes("you typed 'from two'"));
    await second.close();
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
    // a phone: the row is a card of labelled lines, nothing wider than the screen
    const card = await page.evaluate(() => {
      const tr = document.querySelector("tr[data-vm='web-ui']");
      const right = Math.max(...[...tr.querySelectorAll("td, button")].map((e) => e.getBoundingClientRect().right));
      return { labels: [...tr.cells].map((td) => td.dataset.label), right, width: document.documentElement.clientWidth,
        head: getComputedStyle(document.querySelector("#vms thead")).display };
    });
    assert.deepEqual(card.labels, ["Name", "State", "vCPUs", "Memory", "IPs", "Uptime", ""]);
    assert.equal(card.head, "none");
    assert.ok(card.right <= card.width, `a card reaches ${card.right}px of ${card.width}px`);
    await shot(page, "vms-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
    // stop and delete from the list (the delete asks first)
    await row.locator("button[data-action=stop]").click();
    await row.locator(".badge[data-state=stopped]").waitFor({ timeout: 40000 });
    page.once("dialog", (d) => d.accept());
    await row.locator("button[data-action=delete]").click();
    await row.waitFor({ state: "detached" });
  },

  // Volumes: create (bad size and bad name first, each at its field), import with the progress
  // bar moving, clone, resize (shrinking refused at the field), used by a VM (live), a used
  // volume's delete refused in its row, then deleted once free.
  async volumes(page) {
    await login(page);
    await page.click("nav a[href='#/volumes']");
    await page.waitForSelector("#volumes");
    await page.fill("#volume-name", "data");
    await page.fill("#volume-size", "lots");
    await page.click("#create-volume button[type=submit]");
    assert.match(await fieldError(page, "#create-volume", "size_bytes"), /^size_bytes: 'lots' is not a size/);
    await page.fill("#volume-name", "no/slash");
    await page.fill("#volume-size", "64M");
    await page.click("#create-volume button[type=submit]");
    assert.match(await fieldError(page, "#create-volume", "name"), /^name: /);
    await shot(page, "volumes-create-error");
    await page.fill("#volume-name", "data");
    await page.selectOption("#volume-format", "DISK_FORMAT_QCOW2");
    await page.press("#volume-pool", "Enter"); // the keyboard submits it
    const data = page.locator("tr[data-volume='data']");
    await data.waitFor();
    assert.match(await data.innerText(), /qcow2\s+64 MiB/);

    // the import: every value the bar takes, recorded in the page
    await page.evaluate(() => {
      window.barValues = [];
      const bar = document.querySelector("#import-progress");
      new MutationObserver(() => window.barValues.push(Number(bar.getAttribute("value")))).observe(bar, { attributes: true, attributeFilter: ["value"] });
    });
    await page.fill("#import-name", "imported");
    await page.fill("#import-source", extra.image);
    await page.click("#import-volume button[type=submit]");
    await page.waitForFunction(() => /^imported imported: 512 MiB raw/.test(document.querySelector("#import-status").textContent), null, { timeout: 60000 });
    const values = await page.evaluate(() => window.barValues);
    assert.ok(values.some((v) => v > 0 && v < 100), `the bar moved through values between 0 and 100: ${values}`);
    assert.equal(values[values.length - 1], 100, `the bar ends full: ${values}`);
    assert.deepEqual(values, [...values].sort((a, b) => a - b), "the bar never goes back");
    await page.locator("tr[data-volume='imported']").waitFor();
    await shot(page, "volumes-imported");
    // a missing source: the daemon's message at its field, no volume left behind
    await page.fill("#import-name", "ghost");
    await page.fill("#import-source", "/nonexistent/image.qcow2");
    await page.click("#import-volume button[type=submit]");
    assert.match(await fieldError(page, "#import-volume", "source_path"), /^source_path: /);
    assert.equal(await page.locator("tr[data-volume='ghost']").count(), 0);

    await data.locator("button[data-action=clone]").click();
    await page.fill("#clone-volume-input", "data-clone");
    await page.click("#clone-volume button[type=submit]");
    const clone = page.locator("tr[data-volume='data-clone']");
    await clone.waitFor();
    assert.match(await clone.innerText(), /data/);
    await data.locator("button[data-action=resize]").click();
    await page.fill("#resize-volume-input", "16M");
    await page.click("#resize-volume button[type=submit]");
    assert.match(await fieldError(page, "#resize-volume", "size_bytes"), /^size_bytes: .*shrink/);
    await page.fill("#resize-volume-input", "128M");
    await page.click("#resize-volume button[type=submit]");
    await page.waitForFunction(() => /\b128 MiB/.test(document.querySelector("tr[data-volume='data']").innerText));

    // used by a VM: the column follows (no reload), the delete is refused in the row
    await createVm(page, "uses-clone", { "config.kernel": extra.kernel, "config.disks": "data-clone" });
    await page.click("nav a[href='#/volumes']");
    await clone.locator(".used-by a", { hasText: "uses-clone" }).waitFor();
    page.once("dialog", (d) => d.accept());
    await clone.locator("button[data-action=delete]").click();
    await page.waitForFunction(() => /uses-clone/.test(document.querySelector("tr[data-volume='data-clone'] .error").textContent));
    await shot(page, "volumes");
    await page.setViewportSize({ width: 390, height: 800 });
    await shot(page, "volumes-phone");
    await page.setViewportSize({ width: 1280, height: 860 });
  },

  // Networks: a bad subnet at its field, create, its bridge and gateway shown, the leases
  // table, a VM's NIC on it (live in the VMs column), its delete refused while used.
  async networks(page) {
    await login(page);
    await page.click("nav a[href='#/networks']");
    await page.waitForSelector("#networks");
    await page.fill("#network-name", "lan");
    await page.selectOption("#network-mode", "NETWORK_MODE_ISOLATED");
    await page.fill("#network-subnet", "10.213.300.0/24");
    await page.click("#create-network button[type=submit]");
    assert.match(await fieldError(page, "#create-network", "config.ipv4_subnet"), /^network 'lan': config\.ipv4_subnet: '10\.213\.300\.0\/24'/);
    await shot(page, "networks-create-error");
    await page.fill("#network-subnet", "10.213.50.0/24");
    await page.click("#create-network button[type=submit]");
    const lan = page.locator("tr[data-network='lan']");
    await lan.waitFor();
    const text = await lan.innerText();
    assert.match(text, /isolated\s+mvbr-lan\s+10\.213\.50\.0\/24 \(gateway 10\.213\.50\.1\)/);
    await lan.locator("button[data-action=leases]").click();
    await page.waitForSelector(".leases-box :text('No DHCP leases.')");
    await createVm(page, "on-lan", { "config.kernel": extra.kernel, "config.nics": "lan" });
    await page.click("nav a[href='#/networks']");
    await lan.locator(".used-by a", { hasText: "on-lan" }).waitFor();
    page.once("dialog", (d) => d.accept());
    await lan.locator("button[data-action=delete]").click();
    await page.waitForFunction(() => /on-lan/.test(document.querySelector("tr[data-network='lan'] .error").textContent));
    await shot(page, "networks");
  },

  // Host: the machine's CPUs and memory as the daemon tells them, and what VMs take, live.
  async host(page) {
    await login(page);
    await page.click("nav a[href='#/host']");
    await page.waitForSelector("#host-info dl");
    const info = await page.innerText("#host-info");
    assert.match(info, new RegExp(`CPUs\\s+${extra.cpus}\\b`));
    assert.match(info, /hypervisor\s+\S+: /);
    assert.match(await page.innerText("#meter-memory"), /^Memory of all VMs\s+0 of \d+ MiB/);
    await createVm(page, "sized", { "config.kernel": extra.kernel, "config.memory_mb": "256", "config.vcpus": "2" });
    await page.click("nav a[href='#/host']");
    await page.waitForFunction(() => /256 of \d+ MiB/.test(document.querySelector("#meter-memory")?.innerText));
    assert.match(await page.innerText("#meter-vcpus"), /2 of \d+ CPUs/);
    assert.match(await page.innerText("#meter-memory-running"), /^Memory of running VMs\s+0 of/);
    await page.click("tr[data-vm='sized'] a");
    await page.click("button[data-action=start]");
    await page.waitForSelector(".title .badge[data-state=running]");
    await page.click("nav a[href='#/host']");
    await page.waitForFunction(() => /256 of \d+ MiB/.test(document.querySelector("#meter-memory-running")?.innerText));
    await shot(page, "host");
    await page.click("nav a[href='#/']");
    await page.locator("tr[data-vm='sized'] button[data-action=kill]").click();
    await page.locator("tr[data-vm='sized'] .badge[data-state=stopped]").waitFor();
  },

  // The daemon restarts under an open page: the page says so, comes back by itself, and a VM
  // made while it was away shows up without a reload.
  async reconnect(page) {
    await login(page);
    await page.waitForSelector("#conn[data-connected=yes]");
    await page.evaluate(() => {
      window.notReloaded = true;
      window.connSeen = [];
      const el = document.querySelector("#conn");
      new MutationObserver(() => window.connSeen.push(el.textContent)).observe(el, { childList: true, characterData: true, subtree: true });
    });
    await ask("restart the daemon and create VM 'made-while-away'");
    await page.locator("tr[data-vm='made-while-away']").waitFor({ timeout: 30000 });
    await page.waitForSelector("#conn[data-connected=yes]");
    assert.equal(await page.evaluate(() => window.notReloaded), true, "the page was reloaded");
    // and it is live again: a state change after the restart shows
    await page.locator("tr[data-vm='made-while-away'] button[data-action=start]").click();
    await page.locator("tr[data-vm='made-while-away'] .badge[data-state=running]").waitFor();
    await page.locator("tr[data-vm='made-while-away'] button[data-action=kill]").click();
    await page.locator("tr[data-vm='made-while-away'] .badge[data-state=stopped]").waitFor();
    const seen = await page.evaluate(() => window.connSeen);
    assert.ok(seen.some((t) => /reconnecting/.test(t)), `the page said it lost the daemon: ${seen}`);
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
