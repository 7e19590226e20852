"""Event monitor (--event-monitor) and log sink (--log-file, -v).

Events are written like cloud-hypervisor's: a pretty-printed JSON object (2-space indent)
followed by a blank line; timestamps count from process start.
"""

import json
import os
import sys
import time


class EventMonitor:
    def __init__(self, fd, t0):
        self.fd = fd
        self.t0 = t0
        self.muted = False

    def emit(self, source, event, properties=None):
        if self.fd is None or self.muted:
            return
        dt = time.monotonic() - self.t0
        secs = int(dt)
        obj = {
            "timestamp": {"secs": secs, "nanos": int((dt - secs) * 1e9)},
            "source": source,
            "event": event,
            "properties": properties,
        }
        data = (json.dumps(obj, indent=2) + "\n\n").encode()
        try:
            while data:
                n = os.write(self.fd, data)
                data = data[n:]
        except OSError:
            pass


class Log:
    LEVELS = {"error": 0, "warn": 1, "info": 2, "debug": 3}

    def __init__(self, path, verbosity, t0):
        self.t0 = t0
        self.level = min(3, 1 + verbosity)
        self.fd = 2
        if path:
            self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o644)

    def _w(self, lvl, msg):
        if self.LEVELS[lvl] > self.level:
            return
        line = "cloud-hypervisor: %.6fms: <ch-emu> %s: %s\n" % (
            (time.monotonic() - self.t0) * 1000.0,
            lvl.upper(),
            msg,
        )
        try:
            os.write(self.fd, line.encode("utf-8", "replace"))
        except OSError:
            pass

    def error(self, msg):
        self._w("error", msg)

    def warn(self, msg):
        self._w("warn", msg)

    def info(self, msg):
        self._w("info", msg)

    def debug(self, msg):
        self._w("debug", msg)


def die(msg, code=1):
    sys.stderr.write(msg.rstrip("\n") + "\n")
    sys.exit(code)
