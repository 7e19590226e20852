"""The simulated guest: boots instantly, prints on its console, obeys the ACPI power button and
the chemu.* script. Timers (poweroff_after, reboot_after, panic_after, tick, the power-button
latency) count guest running time: they stop while the VM is paused.

Guest -> VMM calls: vmm.guest_output(kind, bytes), vmm.guest_poweroff(), vmm.guest_reset(),
vmm.guest_panic().
"""

import time

from . import script as script_mod

HELP = "commands: poweroff reboot panic ignore obey help"


class RunTimer:
    """A timer on guest running time."""

    def __init__(self, guest, ms, cb, repeat=False):
        self.guest = guest
        self.remaining = ms / 1000.0
        self.period = ms / 1000.0 if repeat else None
        self.cb = cb
        self.handle = None
        self.started = None
        self.dead = False
        if not guest.paused:
            self.start()

    def start(self):
        if self.dead:
            return
        self.started = time.monotonic()
        self.handle = self.guest.loop.call_later(self.remaining, self._fire)

    def stop(self):
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None
            self.remaining = max(0.0, self.remaining - (time.monotonic() - self.started))

    def cancel(self):
        self.dead = True
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    def _fire(self):
        self.handle = None
        if self.period is not None and not self.dead:
            self.remaining = self.period
            self.start()
        else:
            self.dead = True
        self.cb()


class SimGuest:
    kind = "simulated"

    def __init__(self, vmm, script, boot_no, cmdline):
        self.vmm = vmm
        self.loop = vmm.loop
        self.script = script
        self.boot_no = boot_no
        self.paused = False
        self.stopped = False
        self.halted = False
        self.timers = []
        self.pending_input = []
        self.pending_button = False
        self.ignore_button = script.flag("ignore_power_button")
        self.echo = script.flag("echo")
        self.line = bytearray()
        self.last_cr = False
        self.ticks = 0
        self.out_kind = "serial"
        for tok in script_mod.split_cmdline(cmdline):
            if tok.startswith("console="):
                self.out_kind = "console" if tok[8:].startswith("hvc") else "serial"

    # ---- output
    def say(self, text):
        if self.stopped:
            return
        self.vmm.guest_output(self.out_kind, text.replace("\n", "\r\n").encode("utf-8", "replace"))

    def _timer(self, ms, cb, repeat=False):
        t = RunTimer(self, ms, cb, repeat)
        self.timers.append(t)
        return t

    # ---- lifecycle (VMM -> guest)
    def start(self, done):
        self.say("\nchemu: simulated guest started (boot %d)\n" % self.boot_no)
        for line in self.script.print_lines():
            self.say(line + "\n")
        if self.echo:
            self.say("chemu> ")
        s = self.script
        if s.ms("poweroff_after") is not None:
            self._timer(s.ms("poweroff_after"), lambda: self._poweroff("chemu.poweroff_after"))
        if s.ms("reboot_after") is not None:
            self._timer(s.ms("reboot_after"), lambda: self._reboot("chemu.reboot_after"))
        if s.ms("panic_after") is not None:
            self._timer(s.ms("panic_after"), self._panic)
        if s.ms("tick"):
            self._timer(s.ms("tick"), self._tick, repeat=True)
        done(None)

    def pause(self, done):
        self.paused = True
        for t in self.timers:
            t.stop()
        done(None)

    def resume(self, done):
        self.paused = False
        for t in self.timers:
            t.start()
        done(None)
        pending, self.pending_input = self.pending_input, []
        for data in pending:
            self.input(self.out_kind, data)
        if self.pending_button:
            self.pending_button = False
            self.power_button()

    def stop(self, done):
        self.stopped = True
        for t in self.timers:
            t.cancel()
        self.timers = []
        done()

    def power_button(self):
        if self.stopped:
            return
        if self.paused:
            self.pending_button = True
            return
        if self.halted:
            return
        if self.ignore_button:
            self.say("\nchemu: ACPI power button -> ignored\n")
            return
        self.say("\nchemu: ACPI power button -> powering off\n")
        self._timer(self.script.ms("poweroff_delay", 20), lambda: self._poweroff(None))

    def nmi(self):
        self.say("\nchemu: NMI received\n")

    def counters(self, counters, disk_ids, nets, done):
        """vm.counters: the simulated guest does no I/O; the zeros stay."""
        done(counters)

    def add_net(self, net):
        """vm.add-net on a booted VM: the simulated guest takes any net device at once."""
        return None

    def remove_net(self, net):
        """vm.remove-device of a net device: ejected at once (the VMM then closes its fds)."""
        return None

    # ---- guest-initiated events
    def _poweroff(self, why):
        if self.stopped:
            return
        if why:
            self.say("chemu: power off (%s)\n" % why)
        self.vmm.guest_poweroff()

    def _reboot(self, why):
        if self.stopped:
            return
        self.say("chemu: reboot (%s)\n" % why)
        self.vmm.guest_reset()

    def _panic(self):
        if self.stopped:
            return
        self.say("chemu: kernel panic (simulated)\n")
        self.vmm.guest_panic()
        action = self.script.str("panic_action", "halt")
        if action == "reboot":
            self.loop.call_soon(lambda: self._reboot("panic"))
        elif action == "poweroff":
            self.loop.call_soon(lambda: self._poweroff("panic"))
        else:
            self.halted = True
            for t in self.timers:
                t.cancel()

    def _tick(self):
        self.ticks += 1
        self.say("chemu: tick %d\n" % self.ticks)

    # ---- input (console -> guest)
    def input(self, kind, data):
        if self.stopped or kind != self.out_kind:
            return
        if self.paused:
            self.pending_input.append(data)
            return
        if not self.echo or self.halted:
            return
        for b in data:
            self._rx_byte(b)

    def _rx_byte(self, b):
        if b in (0x0D, 0x0A):
            if b == 0x0A and self.last_cr:
                self.last_cr = False
                return
            self.last_cr = b == 0x0D
            self.say("\n")
            line, self.line = bytes(self.line), bytearray()
            if line:
                self._command(line, "\\r" if b == 0x0D else "\\n")
            if not self.stopped:
                self.say("chemu> ")
            return
        self.last_cr = False
        self.vmm.guest_output(self.out_kind, bytes([b]))
        if b in (0x7F, 0x08):
            if self.line:
                self.line.pop()
            return
        if len(self.line) < 256:
            self.line.append(b)

    def _command(self, line, ender):
        text = "".join(chr(c) if 0x20 <= c < 0x7F else "\\x%02x" % c for c in line)
        if text == "poweroff":
            self._poweroff("command")
        elif text == "reboot":
            self._reboot("command")
        elif text == "panic":
            self._panic()
        elif text == "ignore":
            self.ignore_button = True
            self.say("chemu: power button will be ignored\n")
        elif text == "obey":
            self.ignore_button = False
            self.say("chemu: power button powers off\n")
        elif text == "help":
            self.say(HELP + "\n")
        else:
            self.say("chemu: you typed '%s' (ended by %s)\n" % (text, ender))
