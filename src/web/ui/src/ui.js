// DOM helpers shared by the pages: element building, the state badge, key/value lists, form
// fields whose error line is filled with the daemon's message for the field it names, and
// byte sizes as people write them.
export const $ = (sel, el = document) => el.querySelector(sel);

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (v === true) el.setAttribute(k, "");
    else if (v !== false && v != null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) if (c != null) el.append(c);
  return el;
}

// A list table: HEADERS over BODY (a tbody the page fills), sideways-scrolling when wide. On a
// phone each row becomes a card of "label value" lines, the labels being the headers, kept on
// every cell as the page re-renders its rows (a cell spanning columns, such as an inline form
// or "No VMs yet.", stays whole).
export function listTable(id, headers, body) {
  const label = () => {
    for (const tr of body.rows)
      [...tr.cells].forEach((td, i) => {
        if (td.colSpan === 1) td.dataset.label = headers[i] ?? "";
      });
  };
  new MutationObserver(label).observe(body, { childList: true });
  label();
  return h("div", { class: "scroll" },
    h("table", { id, class: "cards" }, h("thead", {}, h("tr", {}, headers.map((t) => h("th", {}, t)))), body));
}

export const STATE = (s) => (s || "").replace("VM_STATE_", "").toLowerCase();

export function badge(state) {
  const s = STATE(state);
  return h("span", { class: `badge state-${s}`, "data-state": s }, s);
}

export function kv(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(([, v]) => v !== "" && v != null).flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

export function vmLink(name) {
  return h("a", { href: `#/vm/${encodeURIComponent(name)}` }, name);
}

// A list of links (VM names), comma-separated; "—" when empty.
export function links(names, link = vmLink) {
  if (!names?.length) return "—";
  return names.flatMap((n, i) => (i ? [", ", link(n)] : [link(n)]));
}

// A labelled form control; NAME is the daemon's field path ("config.memory_mb") so that an
// error naming it lands here (showError).
export function field(label, name, input, hint) {
  return h("div", { class: "field", "data-field": name },
    h("label", { for: input.id }, label), input, hint ? h("small", {}, hint) : null,
    h("p", { class: "field-error", role: "alert" }));
}

export function input(id, attrs = {}) {
  return h("input", { id, name: id, autocomplete: "off", ...attrs });
}

export function select(id, options) {
  return h("select", { id, name: id }, options.map(([value, label]) => h("option", { value }, label)));
}

export function clearErrors(form) {
  form.querySelectorAll(".field-error, .form-error").forEach((e) => (e.textContent = ""));
  form.querySelectorAll(".field").forEach((e) => e.classList.remove("invalid"));
}

// The daemon's message next to the field it names ("config.disks[1].volume: ..." -> the
// "config.disks" field, "config.x.y" to "config.x" when there is no "config.x.y"; ALIASES
// maps other names of the request to the form's), else at the form's foot.
export function showError(form, e, aliases = {}) {
  const named = e.field || "";
  let f = aliases[named] ?? named.replace(/\[\d+\].*$/, "");
  let box = f && form.querySelector(`.field[data-field="${f}"]`);
  while (!box && f.includes(".")) {
    f = f.slice(0, f.lastIndexOf("."));
    box = form.querySelector(`.field[data-field="${f}"]`);
  }
  if (box) {
    box.classList.add("invalid");
    $(".field-error", box).textContent = e.message;
    box.querySelector("input, textarea, select")?.focus();
  } else $(".form-error", form).textContent = e.message;
}

// Runs FN with BUTTON showing progress ("Creating…"), the form's errors cleared first and
// shown where they belong after.
export async function submit(form, button, busyLabel, fn, aliases) {
  clearErrors(form);
  const label = button.textContent;
  button.disabled = true;
  button.textContent = busyLabel;
  try {
    await fn();
    return true;
  } catch (e) {
    showError(form, e, aliases);
    return false;
  } finally {
    button.disabled = false;
    button.textContent = label;
  }
}

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];

export function bytes(n) {
  n = Number(n) || 0;
  let i = 0;
  while (n >= 1024 && i < UNITS.length - 1) {
    n /= 1024;
    i++;
  }
  return `${i ? n.toFixed(n < 10 ? 1 : 0) : n} ${UNITS[i]}`;
}

// "10G", "512 MiB", "1.5g", "4096" (bytes) -> bytes; NaN when it is none of these.
export function parseBytes(s) {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([kmgtp]?)(?:i?b)?\s*$/i.exec(s || "");
  if (!m) return NaN;
  const exp = " kmgtp".indexOf(m[2].toLowerCase() || " ");
  return Math.round(Number(m[1]) * 1024 ** exp);
}

export function when(ts) {
  const s = Number(ts?.seconds || 0);
  return s ? new Date(s * 1000).toLocaleString() : "";
}
