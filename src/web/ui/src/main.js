// mvirt's web UI: a VM list kept live by WatchVms (live.js), a VM page with its console
// (xterm.js over the Console stream), the create form whose errors are the daemon's, shown
// next to the field they name, and the volume, network and host pages. Hash routes: #/ (VMs),
// #/vm/<name>, #/create, #/volumes, #/networks, #/host. No framework: a few DOM helpers
// (ui.js); every state shown comes from the daemon.
import { Terminal } from "@xterm/xterm";
import { FitAddon } from "@xterm/addon-fit";
import "@xterm/xterm/css/xterm.css";
import "./style.css";
import { call, logout, stream } from "./api.js";
import { connect, history, onChange, refresh, vms } from "./live.js";
import { $, badge, field, h, input, kv, listTable, STATE, submit } from "./ui.js";
import { volumesPage } from "./volumes.js";
import { networksPage } from "./networks.js";
import { hostPage } from "./host.js";

function uptime(vm) {
  if (!vm.started_at || !Number(vm.started_at.seconds) || STATE(vm.state) !== "running") return "";
  const s = Math.max(0, Math.floor(Date.now() / 1000 - Number(vm.started_at.seconds)));
  const d = Math.floor(s / 86400), hh = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  return d ? `${d}d ${hh}h` : hh ? `${hh}h ${m}m` : `${m}m ${s % 60}s`;
}

function addresses(vm) {
  return (vm.nics || []).flatMap((n) => n.addresses || []).join(", ");
}

// ---- actions, with progress and errors in place ----

const ACTIONS = [
  ["Start", "StartVm", (s) => s === "stopped" || s === "crashed"],
  ["Stop", "StopVm", (s) => s === "running" || s === "paused"],
  ["Kill", "KillVm", (s) => s !== "stopped" && s !== "crashed"],
  ["Reboot", "RebootVm", (s) => s === "running"],
  ["Pause", "PauseVm", (s) => s === "running"],
  ["Resume", "ResumeVm", (s) => s === "paused"],
  ["Delete", "DeleteVm", (s) => s === "stopped" || s === "crashed"],
];

function actions(vm) {
  const s = STATE(vm.state);
  const out = h("span", { class: "error", role: "alert" });
  const bar = h("div", { class: "actions" });
  for (const [label, method, allowed] of ACTIONS) {
    const b = h("button", { type: "button", "data-action": label.toLowerCase(), disabled: !allowed(s) }, label);
    b.addEventListener("click", async () => {
      if (method === "DeleteVm" && !confirm(`Delete VM ${vm.name}?`)) return;
      out.textContent = "";
      bar.querySelectorAll("button").forEach((x) => (x.disabled = true));
      b.classList.add("busy");
      b.textContent = `${label}…`;
      try {
        await call(method, { vm: vm.name });
        if (method === "DeleteVm" && location.hash.startsWith("#/vm/")) location.hash = "#/";
      } catch (e) {
        out.textContent = e.message;
      }
      refresh(vm.name);
    });
    bar.append(b);
  }
  return h("div", { class: "action-cell" }, bar, out);
}

// ---- pages ----

function vmList() {
  const body = h("tbody");
  const render = () => {
    body.replaceChildren(
      ...[...vms.values()].map((vm) =>
        h("tr", { "data-vm": vm.name },
          h("td", {}, h("a", { href: `#/vm/${encodeURIComponent(vm.name)}` }, vm.name)),
          h("td", {}, badge(vm.state)),
          h("td", { class: "num" }, String(vm.config?.vcpus ?? "")),
          h("td", { class: "num" }, `${vm.config?.memory_mb ?? ""} MiB`),
          h("td", {}, addresses(vm)),
          h("td", {}, uptime(vm)),
          h("td", {}, actions(vm)))),
    );
    if (!vms.size) body.append(h("tr", {}, h("td", { colspan: 7, class: "empty" }, "No VMs yet. ", h("a", { href: "#/create" }, "Create one"))));
  };
  const off = onChange(render);
  render();
  const timer = setInterval(render, 10000); // uptimes
  return {
    el: h("section", {},
      h("div", { class: "title" }, h("h2", {}, "Virtual machines"), h("a", { class: "button", href: "#/create" }, "Create VM")),
      listTable("vms", ["Name", "State", "vCPUs", "Memory", "IPs", "Uptime", ""], body)),
    done: () => {
      off();
      clearInterval(timer);
    },
  };
}

// xterm.js writes its colours and cell sizes into <style> elements, which the page's
// Content-Security-Policy (style-src 'self') does not apply; their text goes into a
// constructed stylesheet instead (CSSOM, which the policy allows), kept in step as xterm
// rewrites them.
function adoptStyles(root) {
  const sheet = new CSSStyleSheet();
  document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
  const sync = () => sheet.replaceSync([...root.querySelectorAll("style")].map((el) => el.textContent).join("\n"));
  const mo = new MutationObserver(sync);
  mo.observe(root, { subtree: true, childList: true, characterData: true });
  sync();
  return () => {
    mo.disconnect();
    document.adoptedStyleSheets = document.adoptedStyleSheets.filter((x) => x !== sheet);
  };
}

// An empty list says so rather than leaving a bare heading.
const orNone = (items, text) => (items.length ? items : [h("li", { class: "empty" }, text)]);

// A state history entry: the state and its reason; an event that changes no state (a config
// or NIC change, whose reason is still the state's) by its kind.
function historyLine(e) {
  const type = String(e.type || "").replace("VM_EVENT_TYPE_", "").toLowerCase().replace(/_/g, " ");
  return type === "config changed" ? `${type} (${STATE(e.state)})` : `${STATE(e.state)}: ${e.reason}`;
}

function vmPage(name) {
  const info = h("div");
  const hist = h("ol", { class: "history" });
  let con = null, conLive = false, termReady = false;
  const render = () => {
    const vm = vms.get(name);
    // the console follows the VM: (re)opened whenever it runs and the stream is not live
    if (vm && termReady && !conLive && ["running", "paused"].includes(STATE(vm.state))) open();
    if (!vm) {
      info.replaceChildren(h("p", {}, `No VM named ${name}.`));
      return;
    }
    const c = vm.config || {};
    info.replaceChildren(
      h("div", { class: "title" }, h("h2", {}, vm.name), badge(vm.state)),
      h("p", { class: "reason" }, vm.state_reason),
      actions(vm),
      kv([["id", vm.id], ["vCPUs", String(c.vcpus)], ["memory", `${c.memory_mb} MiB`], ["kernel", c.kernel],
        ["initramfs", c.initramfs], ["firmware", c.firmware], ["cmdline", c.cmdline], ["disk", c.disk],
        ["autostart", c.autostart ? `on (order ${c.autostart_order || 0})` : "off"],
        ["pid", vm.pid ? String(vm.pid) : ""], ["uptime", uptime(vm)]]),
      h("h3", {}, "Disks"),
      h("ul", { id: "vm-disks" }, orNone((c.disks || []).map((d) => h("li", {},
        d.volume ? ["volume ", h("a", { href: "#/volumes" }, d.volume)] : d.path, d.readonly ? " (read-only)" : "")), "No disks.")),
      h("h3", {}, "NICs"),
      h("ul", { id: "vm-nics" }, orNone((vm.nics || []).map((n) => h("li", {}, `${n.mac} `,
        n.network ? ["on ", h("a", { href: "#/networks" }, n.network)] : n.tap, ` ${(n.addresses || []).join(" ")}`)), "No NICs.")),
    );
    hist.replaceChildren(...(history.get(name) || []).map((e) => h("li", {},
      h("time", { datetime: e.time.toISOString() }, e.time.toLocaleTimeString()), " ", h("span", { class: "event" }, historyLine(e)))));
  };
  const off = onChange(render);
  render();

  const term = new Terminal({ convertEol: false, cursorBlink: true, fontSize: 14, scrollback: 5000 });
  const fit = new FitAddon();
  term.loadAddon(fit);
  const screen = h("div", { id: "terminal", tabindex: "0" });
  const notice = h("p", { id: "console-notice", role: "status" });
  function open() {
    con?.close();
    conLive = true;
    notice.textContent = "";
    notice.classList.remove("ended");
    con = stream("Console", { vm: name, history_bytes: 65536 }, {
      halfClose: false,
      onMessage: (m) => {
        if (m.output?.length) term.write(new Uint8Array(m.output));
        if (m.notice) notice.textContent = m.notice;
      },
      onEnd: (st) => {
        conLive = false;
        notice.textContent = st.status === "OK" ? notice.textContent || "The console stream ended." : st.message;
        notice.classList.add("ended");
      },
    });
  }
  const enc = new TextEncoder();
  term.onData((d) => con?.send({ input: Array.from(enc.encode(d)) }));
  let unadopt = () => {};
  setTimeout(() => {
    term.open(screen);
    unadopt = adoptStyles(screen);
    try { fit.fit(); } catch { /* hidden */ }
    termReady = true;
    const vm = vms.get(name);
    if (vm && ["running", "paused"].includes(STATE(vm.state))) open();
    else notice.textContent = "The VM is not running: its console opens when it starts.";
  });
  const onResize = () => { try { fit.fit(); } catch { /* hidden */ } };
  window.addEventListener("resize", onResize);
  const download = h("button", { type: "button", id: "download-log" }, "Download console log");
  download.addEventListener("click", async () => {
    try {
      const log = await call("GetConsoleLog", { vm: name });
      const url = URL.createObjectURL(new Blob([new Uint8Array(log.data || [])], { type: "text/plain" }));
      h("a", { href: url, download: `${name}-console.log` }).click();
      setTimeout(() => URL.revokeObjectURL(url), 1000);
    } catch (e) {
      notice.textContent = e.message;
    }
  });
  const reconnect = h("button", { type: "button" }, "Reconnect console");
  reconnect.addEventListener("click", () => open());
  return {
    el: h("section", { class: "vm" }, info,
      h("h3", {}, "Console"), h("div", { class: "console-bar" }, reconnect, download), screen, notice,
      h("h3", {}, "State history (since this tab opened)"), hist),
    done: () => {
      off();
      window.removeEventListener("resize", onResize);
      conLive = true; // no reopening from a late render
      con?.close();
      term.dispose();
      unadopt();
    },
  };
}

function createPage() {
  const inp = (name, attrs = {}) => input(name, attrs);
  const form = h("form", { id: "create", novalidate: true },
    field("Name", "name", inp("name", { required: true })),
    field("vCPUs", "config.vcpus", inp("config.vcpus", { type: "number", value: "1", min: "1" })),
    field("Memory (MiB)", "config.memory_mb", inp("config.memory_mb", { type: "number", value: "512", min: "64" })),
    field("Kernel", "config.kernel", inp("config.kernel", { placeholder: "/boot/vmlinuz" }), "or a firmware below"),
    field("Initramfs", "config.initramfs", inp("config.initramfs")),
    field("Kernel command line", "config.cmdline", inp("config.cmdline", { value: "console=ttyS0" })),
    field("Firmware", "config.firmware", inp("config.firmware")),
    field("Disk (path)", "config.disk", inp("config.disk")),
    field("Volumes", "config.disks", inp("config.disks", { placeholder: "data, scratch", list: "volume-names" }), "volume names, comma-separated"),
    field("Networks", "config.nics", inp("config.nics", { placeholder: "default", list: "network-names" }), "one NIC per network, comma-separated"),
    field("cloud-init user-data", "config.user_data", h("textarea", { id: "config.user_data", name: "config.user_data", rows: "8", spellcheck: "false", placeholder: "#cloud-config" })),
    h("datalist", { id: "volume-names" }), h("datalist", { id: "network-names" }),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, "Create"));
  // what exists, offered as the user types (the daemon still judges)
  call("ListVolumes", {}).then((r) => $("#volume-names", form).replaceChildren(...r.volumes.map((v) => h("option", { value: v.name })))).catch(() => {});
  call("ListNetworks", {}).then((r) => $("#network-names", form).replaceChildren(...r.networks.map((n) => h("option", { value: n.name })))).catch(() => {});
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (n) => form.elements[n].value.trim();
    const list = (n) => v(n).split(",").map((s) => s.trim()).filter(Boolean);
    const config = {
      vcpus: Number(v("config.vcpus")) || 0,
      memory_mb: Number(v("config.memory_mb")) || 0,
      kernel: v("config.kernel"), initramfs: v("config.initramfs"), cmdline: v("config.cmdline"),
      firmware: v("config.firmware"), disk: v("config.disk"),
      disks: list("config.disks").map((volume) => ({ volume })),
      nics: list("config.nics").map((network) => ({ network })),
      user_data: form.elements["config.user_data"].value,
    };
    submit(form, $("button[type=submit]", form), "Creating…", async () => {
      const vm = await call("CreateVm", { name: v("name"), config });
      vms.set(vm.name, vm);
      location.hash = `#/vm/${encodeURIComponent(vm.name)}`;
    });
  });
  return { el: h("section", {}, h("h2", {}, "Create a VM"), form), done: () => {} };
}

// ---- the shell ----

let page = null;

function route() {
  page?.done();
  const hash = decodeURIComponent(location.hash || "#/");
  if (hash.startsWith("#/vm/")) page = vmPage(hash.slice(5));
  else if (hash === "#/create") page = createPage();
  else if (hash === "#/volumes") page = volumesPage();
  else if (hash === "#/networks") page = networksPage();
  else if (hash === "#/host") page = hostPage();
  else page = vmList();
  $("#page").replaceChildren(page.el);
  document.querySelectorAll("nav a").forEach((a) => a.setAttribute("aria-current", a.getAttribute("href") === hash ? "page" : "false"));
}

document.body.replaceChildren(
  h("header", {},
    h("h1", {}, h("a", { href: "#/" }, "mvirt")),
    h("nav", {}, h("a", { href: "#/" }, "VMs"), h("a", { href: "#/create" }, "Create"),
      h("a", { href: "#/volumes" }, "Volumes"), h("a", { href: "#/networks" }, "Networks"),
      h("a", { href: "#/host" }, "Host")),
    h("span", { id: "conn", role: "status" }, "connecting…"),
    h("button", { type: "button", id: "logout", onclick: () => logout() }, "Log out")),
  h("main", { id: "page" }));
window.addEventListener("hashchange", route);
route();
connect();
