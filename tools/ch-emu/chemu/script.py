"""The `chemu.*` scripting options (see README.md for the list and their meaning).

Sources, later ones overriding earlier ones per key: the CH_EMU_SCRIPT environment variable
(read at start) and the `chemu.*` tokens of payload.cmdline (read at vm.create, forgotten at
vm.delete). Both use kernel-cmdline syntax: space-separated `key=value`, double quotes allowed.
"""

import shlex

KNOWN = {
    "guest", "poweroff_after", "reboot_after", "panic_after", "panic_action", "crash_after",
    "crash_signal", "exit_code", "ignore_power_button", "poweroff_delay", "hang", "delay",
    "fail", "print", "echo", "tick", "lose_exit_events",
}


class ScriptError(Exception):
    pass


def split_cmdline(cmdline):
    try:
        return shlex.split(cmdline or "")
    except ValueError:
        return (cmdline or "").split()


MS_KEYS = ("poweroff_after", "reboot_after", "panic_after", "crash_after", "poweroff_delay", "tick")
CHOICES = {
    "guest": ("sim", "real"),
    "panic_action": ("halt", "reboot", "poweroff"),
    "crash_signal": ("SEGV", "ABRT", "KILL", "BUS", "ILL", "TERM"),
}


def parse(text):
    """`chemu.key=value` tokens of text -> dict (other tokens are ignored); raises ScriptError
    for an unknown key or a malformed value, so a typo fails loudly."""
    out = {}
    for tok in split_cmdline(text):
        if not tok.startswith("chemu."):
            continue
        key, _, val = tok[len("chemu."):].partition("=")
        if key not in KNOWN:
            raise ScriptError("unknown option chemu.%s" % key)
        out[key] = val
    sc = Script(out)
    for k in MS_KEYS:
        sc.ms(k)
    sc.delays()
    for k, allowed in CHOICES.items():
        v = out.get(k)
        if v is not None and v.upper().replace("SIG", "", 1) not in [a.upper() for a in allowed]:
            raise ScriptError("chemu.%s: expected one of %s, got %r" % (k, ", ".join(allowed), v))
    if out.get("exit_code"):
        try:
            int(out["exit_code"])
        except ValueError:
            raise ScriptError("chemu.exit_code: expected an integer, got %r" % out["exit_code"])
    return out


def strip(cmdline):
    """cmdline without its chemu.* tokens (what a real guest gets to see)."""
    toks = split_cmdline(cmdline)
    return " ".join(shlex.quote(t) if " " in t else t for t in toks if not t.startswith("chemu."))


class Script:
    def __init__(self, opts=None):
        self.opts = dict(opts or {})

    def merged(self, other):
        d = dict(self.opts)
        d.update(other.opts)
        return Script(d)

    def ms(self, key, default=None):
        v = self.opts.get(key)
        if v is None or v == "":
            return default
        try:
            return max(0, int(v))
        except ValueError:
            raise ScriptError("chemu.%s: expected milliseconds, got %r" % (key, v))

    def flag(self, key):
        return self.opts.get(key, "0") not in ("0", "", "false", "no", "off")

    def str(self, key, default=None):
        return self.opts.get(key, default)

    def endpoints(self, key):
        v = self.opts.get(key, "")
        return {e.strip() for e in v.split(",") if e.strip()}

    def delays(self):
        out = {}
        for item in self.opts.get("delay", "").split(","):
            if not item.strip():
                continue
            ep, _, ms = item.partition(":")
            try:
                out[ep.strip()] = max(0, int(ms))
            except ValueError:
                raise ScriptError("chemu.delay: expected ENDPOINT:MS, got %r" % item)
        return out

    def print_lines(self):
        v = self.opts.get("print")
        return v.split("|") if v else []
