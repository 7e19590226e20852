"""ch-emu internals: evloop (event loop), http (HTTP/1.1 server), schema (OpenAPI validation),
vmm (API + state machine), serial (console devices), guest_sim / guest_qemu (the guest),
script (chemu.* options), monitor (events, log), cli (command line, process setup)."""
