// The host page: the machine (CPUs, memory, kernel), the hypervisor mvirt drives and its
// version, mvirt's own version, and what the VMs take of the host: allocated (every defined
// VM) and running, with each VM's share. Kept live from the VM list (live.js); the daemon's
// sums are re-read on every VM event.
import { call } from "./api.js";
import { onChange, onChangeSettled, vms } from "./live.js";
import { badge, h, kv, listTable, STATE, vmLink } from "./ui.js";

function meter(id, label, used, total, unit) {
  const pct = total ? Math.round((used * 100) / total) : 0;
  const fill = h("div", { class: `meter-fill${pct > 100 ? " over" : ""}` });
  fill.style.width = `${Math.min(pct, 100)}%`; // CSSOM: the page's CSP has no inline styles
  return h("div", { class: "meter", id, role: "meter", "aria-valuenow": String(pct), "aria-valuemin": "0", "aria-valuemax": "100", "aria-label": label },
    h("div", { class: "meter-label" }, h("span", {}, label), h("span", {}, `${used} of ${total} ${unit} (${pct}%)${pct > 100 ? " overcommitted" : ""}`)),
    h("div", { class: "meter-track" }, fill));
}

export function hostPage() {
  const info = h("div", { id: "host-info" }, h("p", {}, "…"));
  const usage = h("div", { id: "host-usage" });
  const table = h("tbody");
  const error = h("p", { class: "form-error", role: "alert" });
  let sys = null, ver = null;

  const render = () => {
    if (sys) {
      const running = [...vms.values()].filter((vm) => ["running", "paused", "starting", "stopping"].includes(STATE(vm.state)));
      const runCpu = running.reduce((a, vm) => a + (vm.config?.vcpus || 0), 0);
      const runMem = running.reduce((a, vm) => a + Number(vm.config?.memory_mb || 0), 0);
      const hv = sys.hypervisor_found ? sys.hypervisor_version || "(version unknown)" : "not found";
      info.replaceChildren(kv([
        ["host", sys.hostname], ["kernel", sys.kernel_release],
        ["CPUs", String(sys.host_cpus)], ["memory", `${sys.host_memory_mb} MiB`],
        ["hypervisor", `${sys.hypervisor_path}: ${hv}`],
        ["mvirt-vmm", ver ? `${ver.version} (API ${ver.api_version})` : ""],
        ["VMs", `${sys.vm_count} defined, ${running.length} running`],
      ]));
      usage.replaceChildren(
        meter("meter-vcpus-running", "vCPUs of running VMs", runCpu, sys.host_cpus, "CPUs"),
        meter("meter-memory-running", "Memory of running VMs", runMem, Number(sys.host_memory_mb), "MiB"),
        meter("meter-vcpus", "vCPUs of all VMs", sys.allocated_vcpus, sys.host_cpus, "CPUs"),
        meter("meter-memory", "Memory of all VMs", Number(sys.allocated_memory_mb), Number(sys.host_memory_mb), "MiB"));
    }
    table.replaceChildren(...[...vms.values()].map((vm) => h("tr", { "data-vm": vm.name },
      h("td", {}, vmLink(vm.name)), h("td", {}, badge(vm.state)),
      h("td", { class: "num" }, String(vm.config?.vcpus ?? "")),
      h("td", { class: "num" }, `${vm.config?.memory_mb ?? ""} MiB`),
      h("td", { class: "num" }, sys?.host_memory_mb ? `${((Number(vm.config?.memory_mb || 0) * 100) / Number(sys.host_memory_mb)).toFixed(1)}%` : ""))));
    if (!vms.size) table.append(h("tr", {}, h("td", { colspan: 5, class: "empty" }, "No VMs.")));
  };
  async function load() {
    try {
      [sys, ver] = await Promise.all([call("GetSystemInfo", {}), call("GetVersion", {})]);
      error.textContent = "";
    } catch (e) {
      error.textContent = e.message;
    }
    render();
  }
  const offRender = onChange(render);
  const offLoad = onChangeSettled(load);
  load();
  return {
    el: h("section", {},
      h("h2", {}, "Host"), error, info,
      h("h3", {}, "What the VMs use"), usage,
      listTable("host-vms", ["VM", "State", "vCPUs", "Memory", "of host memory"], table)),
    done: () => {
      offRender();
      offLoad();
    },
  };
}
