// The daemon's gRPC API from the browser, through mvirt-web's bridge (src/web/bridge.h):
// unary calls as POST /api/call/<service>/<method> with protobuf bodies, streams as
// WebSockets on /api/stream/<service>/<method>. The messages are protobufjs code generated at
// build time from the API's own .proto (build.sh: "mvirt-pb", and the method table
// "mvirt-desc"), so the field names are the daemon's (snake_case) and an error's message names
// the field as the daemon does.
import pb from "mvirt-pb";
import desc from "mvirt-desc";

const METHODS = {}; // "GetVm" -> {service, req, res}
for (const [name, s] of Object.entries(desc.nested.mvirt.nested))
  for (const [m, d] of Object.entries(s.methods || {}))
    METHODS[m] = { service: `mvirt.${name}`, req: pb.mvirt[d.requestType], res: pb.mvirt[d.responseType] };

export class ApiError extends Error {
  constructor(status, message, httpStatus) {
    super(message);
    this.status = status; // "INVALID_ARGUMENT", ...
    this.httpStatus = httpStatus;
  }
  // The field the daemon's message names ("config.disks[1].path: ...", also after the
  // object it is about: "network 'lan': config.ipv4_subnet: ..."), or "".
  get field() {
    const m = /^(?:[a-z]+ '[^']*': )?([a-z_0-9]+(?:\[\d+\])?(?:\.[a-z_0-9]+(?:\[\d+\])?)*): /.exec(this.message);
    return m ? m[1] : "";
  }
}

let csrf = sessionStorage.getItem("mvirt-csrf") || "";

async function session() {
  if (csrf) return csrf;
  const res = await fetch("/api/session");
  if (res.status === 401) {
    location.assign("/");
    throw new ApiError("UNAUTHENTICATED", "not logged in", 401);
  }
  csrf = (await res.json()).csrf;
  sessionStorage.setItem("mvirt-csrf", csrf);
  return csrf;
}

function method(name) {
  const m = METHODS[name];
  if (!m) throw new Error(`no such method ${name}`);
  return m;
}

const TO_OBJECT = { enums: String, longs: Number, bytes: Array, defaults: true, arrays: true };

export function decode(type, bytes) {
  return type.toObject(type.decode(bytes), TO_OBJECT);
}

// Enums go by name ("DISK_FORMAT_QCOW2"): fromObject turns them into numbers, then verify.
function encode(type, obj) {
  const msg = type.fromObject(obj);
  const err = type.verify(msg);
  if (err) throw new ApiError("INVALID_ARGUMENT", err, 0);
  return type.encode(msg).finish();
}

// A unary call: the response as a plain object, or an ApiError with the daemon's words.
export async function call(name, req = {}) {
  const m = method(name);
  const token = await session();
  const res = await fetch(`/api/call/${m.service}/${name}`, {
    method: "POST",
    headers: { "Content-Type": "application/x-protobuf", "X-CSRF-Token": token },
    body: encode(m.req, req),
  });
  if (res.ok) return decode(m.res, new Uint8Array(await res.arrayBuffer()));
  if (res.status === 401) location.assign("/");
  const body = await res.json().catch(() => ({}));
  if (res.status === 403 && !body.code) {
    csrf = "";
    sessionStorage.removeItem("mvirt-csrf");
  }
  throw new ApiError(body.status || `HTTP_${res.status}`, body.message || res.statusText, res.status);
}

// A stream: onReady() once the daemon has taken the call (for WatchVms: no event from then
// on is missed), onMessage(obj) per response, onEnd({status, message}) once. halfClose: the
// request side ends after req (server streams); else send() more and end().
export function stream(name, req, { onReady, onMessage, onEnd, halfClose = true }) {
  const m = method(name);
  const proto = location.protocol === "https:" ? "wss:" : "ws:";
  const ws = new WebSocket(`${proto}//${location.host}/api/stream/${m.service}/${name}`, "mvirt-stream");
  let ended = false;
  const end = (st) => {
    if (!ended) {
      ended = true;
      onEnd?.(st);
    }
  };
  ws.binaryType = "arraybuffer";
  ws.onopen = () => {
    ws.send(encode(m.req, req));
    if (halfClose) ws.send("end");
  };
  ws.onmessage = (ev) => {
    if (typeof ev.data === "string") {
      const obj = JSON.parse(ev.data);
      if (obj.ready) onReady?.();
      else end(obj);
    }
    else onMessage(decode(m.res, new Uint8Array(ev.data)));
  };
  ws.onclose = (ev) => end({ status: "UNAVAILABLE", message: ev.reason || "the connection closed" });
  return {
    send: (obj) => ws.readyState === WebSocket.OPEN && ws.send(encode(m.req, obj)),
    end: () => ws.readyState === WebSocket.OPEN && ws.send("end"),
    close: () => {
      ended = true;
      ws.close();
    },
  };
}

export async function logout() {
  const token = await session();
  await fetch("/api/logout", { method: "POST", headers: { "X-CSRF-Token": token } });
  sessionStorage.removeItem("mvirt-csrf");
  location.assign("/");
}
