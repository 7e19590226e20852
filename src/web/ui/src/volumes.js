// The volumes page: every volume with its size, what it takes on the host, its backing chain
// and the VMs that use it; create, import (with a progress bar fed by ImportVolume's stream,
// cancellable), clone, resize and delete, each with the daemon's errors in place. Re-read on
// every VM event (what uses a volume changes only through VMs) and after each action.
import { ApiError, call, stream } from "./api.js";
import { onChangeSettled } from "./live.js";
import { $, bytes, field, h, input, links, listTable, parseBytes, select, showError, submit } from "./ui.js";

const FORMATS = [["DISK_FORMAT_UNSPECIFIED", "raw (default)"], ["DISK_FORMAT_RAW", "raw"], ["DISK_FORMAT_QCOW2", "qcow2"]];
const FMT = (f) => (f || "").replace("DISK_FORMAT_", "").toLowerCase() || "—";

// A size field's value in bytes, or an error naming the request's field as the daemon would.
function size(form, id, fieldName) {
  const raw = form.elements[id].value;
  const n = parseBytes(raw);
  if (!Number.isFinite(n) || n <= 0)
    throw new ApiError("INVALID_ARGUMENT", `${fieldName}: '${raw}' is not a size (e.g. 10G, 512M, 1048576)`, 0);
  return n;
}

// An inline form under a volume's row (clone, resize): one field, a button, its error line.
function rowForm(id, label, fieldName, inputAttrs, buttonLabel, busy, run) {
  const f = h("form", { class: "inline", id, novalidate: true },
    field(label, fieldName, input(`${id}-input`, inputAttrs)),
    h("button", { type: "submit" }, buttonLabel),
    h("button", { type: "button", class: "cancel" }, "Cancel"),
    h("p", { class: "form-error", role: "alert" }));
  f.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit(f, $("button[type=submit]", f), busy, () => run(f.elements[`${id}-input`].value.trim(), f));
  });
  setTimeout(() => f.elements[`${id}-input`].focus());
  return f;
}

export function volumesPage() {
  const body = h("tbody");
  const summary = h("p", { class: "summary", id: "volume-summary" });
  const unknown = h("div", { id: "unknown-files" });
  const listError = h("p", { class: "form-error", role: "alert" });
  let open = null; // {name, kind} of the inline form shown
  let list = [];

  const render = () => {
    body.replaceChildren();
    for (const v of list) {
      const err = h("span", { class: "error", role: "alert" });
      const act = (label, fn) => h("button", { type: "button", "data-action": label.toLowerCase(), onclick: fn }, label);
      body.append(h("tr", { "data-volume": v.name },
        h("td", {}, v.name),
        h("td", {}, v.pool),
        h("td", {}, FMT(v.format)),
        h("td", { class: "num" }, bytes(v.virtual_size)),
        h("td", { class: "num" }, bytes(v.allocated_bytes)),
        h("td", {}, v.backing_chain?.length ? v.backing_chain.join(" ← ") : "—"),
        h("td", { class: "used-by" }, links(v.used_by)),
        h("td", { class: v.status === "ok" ? "" : "bad" }, v.status),
        h("td", {}, h("div", { class: "action-cell" }, h("div", { class: "actions" },
          act("Clone", () => toggle(v.name, "clone")),
          act("Resize", () => toggle(v.name, "resize")),
          act("Delete", async (ev) => {
            if (!confirm(`Delete volume ${v.name}?`)) return;
            ev.target.disabled = true;
            ev.target.textContent = "Delete…";
            try {
              await call("DeleteVolume", { name: v.name });
            } catch (e) {
              err.textContent = e.message;
              ev.target.disabled = false;
              ev.target.textContent = "Delete";
              return;
            }
            load();
          })), err))));
      if (open?.name === v.name) {
        const f = open.kind === "clone"
          ? rowForm("clone-volume", `Clone ${v.name} as`, "name", { placeholder: `${v.name}-clone` }, "Clone", "Cloning…",
            async (name) => { await call("CloneVolume", { source: v.name, name }); open = null; await load(); })
          : rowForm("resize-volume", `New size of ${v.name} (now ${bytes(v.virtual_size)})`, "size_bytes", { placeholder: "e.g. 20G" }, "Resize", "Resizing…",
            async (_, form) => { await call("ResizeVolume", { name: v.name, size_bytes: size(form, "resize-volume-input", "size_bytes") }); open = null; await load(); });
        $(".cancel", f).addEventListener("click", () => { open = null; render(); });
        body.append(h("tr", { class: "row-form" }, h("td", { colspan: 9 }, f)));
      }
    }
    if (!list.length) body.append(h("tr", {}, h("td", { colspan: 9, class: "empty" }, "No volumes yet.")));
  };
  const toggle = (name, kind) => {
    open = open?.name === name && open.kind === kind ? null : { name, kind };
    render();
  };
  async function load() {
    try {
      const r = await call("ListVolumes", {});
      list = r.volumes;
      listError.textContent = "";
      const virt = list.reduce((a, v) => a + Number(v.virtual_size), 0);
      const alloc = list.reduce((a, v) => a + Number(v.allocated_bytes), 0);
      summary.textContent = `${list.length} volume${list.length === 1 ? "" : "s"}: ${bytes(virt)} for guests, ${bytes(alloc)} on the host`;
      unknown.replaceChildren(...(r.unknown_files?.length
        ? [h("h3", {}, "Files in pools that are not volumes"), h("ul", {}, r.unknown_files.map((f) => h("li", {}, f)))]
        : []));
      render();
    } catch (e) {
      listError.textContent = e.message;
    }
  }

  // create
  const create = h("form", { id: "create-volume", novalidate: true },
    field("Name", "name", input("volume-name", { required: true })),
    field("Size", "size_bytes", input("volume-size", { placeholder: "e.g. 10G" }), "bytes, or with K/M/G/T (powers of 1024)"),
    field("Format", "format", select("volume-format", FORMATS)),
    field("Pool", "pool", input("volume-pool", { placeholder: "default" })),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, "Create volume"));
  create.addEventListener("submit", (ev) => {
    ev.preventDefault();
    submit(create, $("button[type=submit]", create), "Creating…", async () => {
      await call("CreateVolume", {
        name: create.elements["volume-name"].value.trim(),
        size_bytes: size(create, "volume-size", "size_bytes"),
        format: create.elements["volume-format"].value,
        pool: create.elements["volume-pool"].value.trim(),
      });
      create.reset();
      await load();
    });
  });

  // import, with its progress
  const bar = h("progress", { id: "import-progress", max: "100", value: "0", hidden: true });
  const barText = h("span", { id: "import-status", role: "status" });
  const cancel = h("button", { type: "button", id: "import-cancel", hidden: true }, "Cancel import");
  const imp = h("form", { id: "import-volume", novalidate: true },
    field("Name", "name", input("import-name", { required: true })),
    field("Image file on the host", "source_path", input("import-source", { placeholder: "/var/lib/images/debian-12.qcow2" }), "an absolute path the daemon can read; its format is read from the file; closing the browser tab before the import ends cancels it"),
    field("Convert to", "format", select("import-format", [["DISK_FORMAT_UNSPECIFIED", "keep the image's format"], ...FORMATS.slice(1)])),
    field("Pool", "pool", input("import-pool", { placeholder: "default" })),
    h("div", { class: "progress-line" }, bar, barText, cancel),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, "Import"));
  let importing = null;
  imp.addEventListener("submit", (ev) => {
    ev.preventDefault();
    if (importing) return;
    const button = $("button[type=submit]", imp);
    const name = imp.elements["import-name"].value.trim();
    imp.querySelectorAll(".field-error, .form-error").forEach((e) => (e.textContent = ""));
    imp.querySelectorAll(".field").forEach((e) => e.classList.remove("invalid"));
    button.disabled = true;
    button.textContent = "Importing…";
    bar.hidden = false;
    cancel.hidden = false;
    bar.setAttribute("value", "0");
    barText.textContent = "starting…";
    importing = stream("ImportVolume", {
      name,
      source_path: imp.elements["import-source"].value.trim(),
      format: imp.elements["import-format"].value,
      pool: imp.elements["import-pool"].value.trim(),
    }, {
      onMessage: (m) => {
        const total = Number(m.total_bytes), done = Number(m.done_bytes);
        const pct = total ? Math.min(100, (done * 100) / total) : 0;
        bar.setAttribute("value", pct.toFixed(1));
        barText.textContent = `${bytes(done)} of ${bytes(total)} (${Math.floor(pct)}%)`;
        if (m.volume) barText.textContent = `imported ${m.volume.name}: ${bytes(m.volume.virtual_size)} ${FMT(m.volume.format)}`;
      },
      onEnd: (st) => {
        finish();
        if (st.status !== "OK") {
          bar.hidden = true;
          barText.textContent = "";
          showError(imp, new ApiError(st.status, st.message, 0));
        } else imp.reset();
        load();
      },
    });
  });
  cancel.addEventListener("click", () => {
    importing?.close(); // the daemon sees the call cancelled and removes the partial volume
    finish();
    bar.hidden = true;
    barText.textContent = "import cancelled";
    setTimeout(load, 300);
  });
  function finish() {
    importing = null;
    const button = $("button[type=submit]", imp);
    button.disabled = false;
    button.textContent = "Import";
    cancel.hidden = true;
  }

  const off = onChangeSettled(load);
  load();
  return {
    el: h("section", {},
      h("div", { class: "title" }, h("h2", {}, "Volumes"), summary),
      listError,
      listTable("volumes", ["Name", "Pool", "Format", "Size", "On host", "Backing chain", "Used by", "Status", ""], body),
      unknown,
      h("div", { class: "forms" },
        h("div", {}, h("h3", {}, "Create a volume"), create),
        h("div", {}, h("h3", {}, "Import an image"), imp))),
    done: () => {
      off();
      // an import goes on without the page: the daemon finishes it (the stream is ours only)
    },
  };
}
