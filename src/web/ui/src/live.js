// The live state every page draws from: all VMs, kept up to date by WatchVms (each event
// re-reads its VM with GetVm), and reconnected by itself, with backoff, when the stream ends
// (a daemon restart, mvirt-web restarted, the network). Pages subscribe with onChange; the
// volume, network and host pages re-read their own data on the same events (what VMs use
// changes only through them).
import { ApiError, call, stream } from "./api.js";
import { $ } from "./ui.js";

export const vms = new Map(); // name -> Vm
export const history = new Map(); // name -> [{time, state, reason, type}]
const listeners = new Set();
let connected = false;
let generation = 0; // bumped on every (re)connect: pages re-read everything then

export function onChange(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

// FN once the events have settled (MS after the last): for pages that re-read their own data.
export function onChangeSettled(fn, ms = 150) {
  let timer = 0;
  const off = onChange(() => {
    clearTimeout(timer);
    timer = setTimeout(fn, ms);
  });
  return () => {
    off();
    clearTimeout(timer);
  };
}

export const isConnected = () => connected;
export const connectionGeneration = () => generation;

function notify(ev) {
  for (const fn of listeners) fn(ev);
}

export async function refresh(name, ev) {
  try {
    const vm = await call("GetVm", { vm: name });
    vms.set(vm.name, vm);
  } catch (e) {
    if (e instanceof ApiError && e.status === "NOT_FOUND") vms.delete(name);
  }
  notify(ev || { vm_name: name });
}

function setStatus(text) {
  const el = $("#conn");
  if (el) {
    el.textContent = text;
    el.dataset.connected = connected ? "yes" : "no";
  }
}

export function connect(delay = 500) {
  // events before the list is in are re-read after it: the list may answer after them
  let early = new Set();
  const onEvent = (ev) => (early ? early.add(ev.vm_name) : refresh(ev.vm_name, ev));
  stream("WatchVms", {}, {
    // the list once the daemon has subscribed the stream: no event falls between the two
    onReady: () =>
      call("ListVms", {}).then((list) => {
        vms.clear();
        for (const vm of list.vms) vms.set(vm.name, vm);
        connected = true;
        generation++;
        setStatus("live");
        notify({ reconnected: true });
        for (const name of early) refresh(name);
        early = null;
      }, (e) => setStatus(`mvirt-vmm: ${e.message}`)),
    onMessage: (ev) => {
      const list = history.get(ev.vm_name) || [];
      const t = Number(ev.time?.seconds || 0) * 1000 + Math.floor((ev.time?.nanos || 0) / 1e6);
      list.push({ time: t ? new Date(t) : new Date(), state: ev.state, reason: ev.reason, type: ev.type });
      history.set(ev.vm_name, list.slice(-50));
      onEvent(ev);
    },
    onEnd: () => {
      if (connected) delay = 500;
      connected = false;
      setStatus("reconnecting to mvirt-vmm…");
      setTimeout(() => connect(Math.min(delay * 2, 5000)), delay);
    },
  });
}
