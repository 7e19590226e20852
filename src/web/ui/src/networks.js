// The networks page: every network with its bridge, addresses, DHCP range and the VMs on
// it; its DHCP leases on demand; create (the daemon's errors at the field they name) and
// delete. Re-read on every VM event (NICs come and go with VMs) and after each action.
import { call } from "./api.js";
import { onChangeSettled } from "./live.js";
import { $, field, h, input, links, listTable, select, submit, when } from "./ui.js";

const MODES = [["NETWORK_MODE_NAT", "NAT (masquerade to the host's uplink)"], ["NETWORK_MODE_ISOLATED", "isolated (VMs and the host only)"], ["NETWORK_MODE_BRIDGE", "bridge (join an existing host bridge)"]];
const MODE = (m) => (m || "").replace("NETWORK_MODE_", "").toLowerCase().replace("unspecified", "nat");

function leasesTable(leases) {
  if (!leases.length) return h("p", { class: "empty" }, "No DHCP leases.");
  return h("table", { class: "leases" },
    h("thead", {}, h("tr", {}, ["MAC", "Address", "Host name", "VM", "Expires"].map((t) => h("th", {}, t)))),
    h("tbody", {}, leases.map((l) => h("tr", { "data-mac": l.mac },
      h("td", {}, l.mac), h("td", {}, l.address), h("td", {}, l.hostname || "—"),
      h("td", {}, l.vm ? links([l.vm]) : "—"), h("td", {}, when(l.expires_at) || "never")))));
}

export function networksPage() {
  const body = h("tbody");
  const listError = h("p", { class: "form-error", role: "alert" });
  const shown = new Map(); // network name -> its leases element, while shown
  let list = [];

  async function loadLeases(name) {
    const box = shown.get(name);
    try {
      const r = await call("ListLeases", { network: name });
      box.replaceChildren(h("h4", {}, `Leases on ${name}`), leasesTable(r.leases));
    } catch (e) {
      box.replaceChildren(h("p", { class: "error", role: "alert" }, e.message));
    }
  }

  const render = () => {
    body.replaceChildren();
    for (const n of list) {
      const err = h("span", { class: "error", role: "alert" });
      const dhcp = n.dhcp_start ? `${n.dhcp_start} – ${n.dhcp_end}` : "—";
      const leases = h("button", { type: "button", "data-action": "leases", "aria-expanded": shown.has(n.name) ? "true" : "false" }, "Leases");
      leases.addEventListener("click", () => {
        if (shown.has(n.name)) shown.delete(n.name);
        else shown.set(n.name, h("div", { class: "leases-box" }, "…"));
        render();
        if (shown.has(n.name)) loadLeases(n.name);
      });
      const del = h("button", { type: "button", "data-action": "delete" }, "Delete");
      del.addEventListener("click", async () => {
        if (!confirm(`Delete network ${n.name}?`)) return;
        del.disabled = true;
        del.textContent = "Delete…";
        try {
          await call("DeleteNetwork", { network: n.name });
          shown.delete(n.name);
          load();
        } catch (e) {
          err.textContent = e.message;
          del.disabled = false;
          del.textContent = "Delete";
        }
      });
      body.append(h("tr", { "data-network": n.name },
        h("td", {}, n.name),
        h("td", {}, MODE(n.mode)),
        h("td", {}, n.bridge),
        h("td", {}, n.ipv4_subnet ? `${n.ipv4_subnet} (gateway ${n.gateway})` : "—"),
        h("td", {}, dhcp),
        h("td", {}, n.ipv6_prefix || "—"),
        h("td", {}, n.domain || "—"),
        h("td", { class: "used-by" }, links(n.used_by)),
        h("td", { class: n.status === "ok" ? "" : "bad" }, n.status),
        h("td", {}, h("div", { class: "action-cell" }, h("div", { class: "actions" }, leases, del), err))));
      if (shown.has(n.name)) body.append(h("tr", { class: "row-form" }, h("td", { colspan: 10 }, shown.get(n.name))));
    }
    if (!list.length) body.append(h("tr", {}, h("td", { colspan: 10, class: "empty" }, "No networks yet.")));
  };

  async function load() {
    try {
      list = (await call("ListNetworks", {})).networks;
      listError.textContent = "";
      for (const name of shown.keys()) if (!list.some((n) => n.name === name)) shown.delete(name);
      render();
      for (const name of shown.keys()) loadLeases(name);
    } catch (e) {
      listError.textContent = e.message;
    }
  }

  const form = h("form", { id: "create-network", class: "grid", novalidate: true },
    field("Name", "name", input("network-name", { required: true })),
    field("Mode", "config.mode", select("network-mode", MODES)),
    field("Bridge", "config.bridge", input("network-bridge", { placeholder: "mvbr-<name>" }), "required in bridge mode (an existing host bridge); else the bridge mvirt makes"),
    field("IPv4 subnet", "config.ipv4_subnet", input("network-subnet", { placeholder: "10.77.0.0/24" }), "the gateway is .1, or give its address: 10.77.0.254/24"),
    field("DHCP from", "config.dhcp_start", input("network-dhcp-start", { placeholder: "every address but the gateway's" })),
    field("DHCP to", "config.dhcp_end", input("network-dhcp-end")),
    field("IPv6 prefix", "config.ipv6_prefix", input("network-ipv6", { placeholder: "fd42:1::/64 (optional)" })),
    field("DNS domain", "config.domain", input("network-domain", { placeholder: "<name>.mvirt" })),
    h("p", { class: "form-error", role: "alert" }),
    h("button", { type: "submit" }, "Create network"));
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const v = (id) => form.elements[id].value.trim();
    submit(form, $("button[type=submit]", form), "Creating…", async () => {
      await call("CreateNetwork", {
        name: v("network-name"),
        config: {
          mode: v("network-mode"), bridge: v("network-bridge"), ipv4_subnet: v("network-subnet"),
          dhcp_start: v("network-dhcp-start"), dhcp_end: v("network-dhcp-end"),
          ipv6_prefix: v("network-ipv6"), domain: v("network-domain"),
        },
      });
      form.reset();
      await load();
    });
  });

  const off = onChangeSettled(load);
  load();
  return {
    el: h("section", {},
      h("h2", {}, "Networks"),
      listError,
      listTable("networks", ["Name", "Mode", "Bridge", "IPv4", "DHCP range", "IPv6", "Domain", "VMs", "Status", ""], body),
      h("h3", {}, "Create a network"), form),
    done: () => {
      off();
    },
  };
}
