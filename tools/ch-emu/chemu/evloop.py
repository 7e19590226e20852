"""Single-threaded event loop: fd readiness (epoll via selectors), timers, signals.

Everything in ch-emu runs on this loop in the main thread, so no locking is needed and the
QEMU child (which gets PR_SET_PDEATHSIG) is always forked by the thread that lives as long as
the process. Signal handlers only record the signal; the loop dispatches it after select()
returns (the wakeup fd makes select() return promptly).
"""

import heapq
import itertools
import os
import selectors
import signal
import time


class Timer:
    __slots__ = ("when", "cb", "cancelled")

    def __init__(self, when, cb):
        self.when = when
        self.cb = cb
        self.cancelled = False

    def cancel(self):
        self.cancelled = True


class Loop:
    def __init__(self):
        self.sel = selectors.DefaultSelector()
        self.handlers = {}  # fd -> [reader_cb, writer_cb]
        self.timers = []
        self.seq = itertools.count()
        self.stopping = False
        self.pending_signals = []
        self.signal_cbs = {}
        self._wake_r, self._wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        signal.set_wakeup_fd(self._wake_w, warn_on_full_buffer=False)
        self.add_reader(self._wake_r, self._drain_wakeup)

    # ---- fds
    def _update(self, fd):
        h = self.handlers.get(fd)
        ev = 0
        if h:
            if h[0]:
                ev |= selectors.EVENT_READ
            if h[1]:
                ev |= selectors.EVENT_WRITE
        registered = fd in self.sel.get_map()
        if ev == 0:
            if registered:
                self.sel.unregister(fd)
            self.handlers.pop(fd, None)
        elif registered:
            self.sel.modify(fd, ev)
        else:
            self.sel.register(fd, ev)

    def add_reader(self, fd, cb):
        self.handlers.setdefault(fd, [None, None])[0] = cb
        self._update(fd)

    def remove_reader(self, fd):
        if fd in self.handlers:
            self.handlers[fd][0] = None
            self._update(fd)

    def add_writer(self, fd, cb):
        self.handlers.setdefault(fd, [None, None])[1] = cb
        self._update(fd)

    def remove_writer(self, fd):
        if fd in self.handlers:
            self.handlers[fd][1] = None
            self._update(fd)

    def forget(self, fd):
        """Drop every callback of fd (call before closing it)."""
        if fd in self.handlers:
            self.handlers[fd] = [None, None]
            self._update(fd)

    # ---- timers
    def call_later(self, delay, cb):
        t = Timer(time.monotonic() + max(0.0, delay), cb)
        heapq.heappush(self.timers, (t.when, next(self.seq), t))
        return t

    def call_soon(self, cb):
        return self.call_later(0, cb)

    # ---- signals
    def add_signal(self, sig, cb):
        self.signal_cbs[sig] = cb
        signal.signal(sig, self._on_signal)

    def _on_signal(self, signum, _frame):
        self.pending_signals.append(signum)

    def _drain_wakeup(self):
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass

    # ---- run
    def stop(self):
        self.stopping = True

    def run(self):
        while not self.stopping:
            while self.timers and self.timers[0][2].cancelled:
                heapq.heappop(self.timers)
            timeout = None
            if self.timers:
                timeout = max(0.0, self.timers[0][0] - time.monotonic())
            if self.pending_signals:
                timeout = 0
            try:
                events = self.sel.select(timeout)
            except InterruptedError:
                events = []
            for key, mask in events:
                h = self.handlers.get(key.fd)
                if h and mask & selectors.EVENT_READ and h[0]:
                    h[0]()
                h = self.handlers.get(key.fd)
                if h and mask & selectors.EVENT_WRITE and h[1]:
                    h[1]()
                if self.stopping:
                    return
            while self.pending_signals and not self.stopping:
                sig = self.pending_signals.pop(0)
                cb = self.signal_cbs.get(sig)
                if cb:
                    cb(sig)
            now = time.monotonic()
            while self.timers and not self.stopping and self.timers[0][0] <= now:
                _, _, t = heapq.heappop(self.timers)
                if not t.cancelled:
                    t.cancelled = True
                    t.cb()
