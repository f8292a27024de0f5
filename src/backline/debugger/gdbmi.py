"""gdb's machine interface (MI3) in a subprocess, through pygdbmi, read by one background thread.

The reader thread takes every record gdb writes: command results (matched to the
request by their token), ``*stopped``/``*running`` notifications, and console
output (where logpoints print).  Requests are made from one thread at a time.
"""

from __future__ import annotations

import itertools
import logging
import shutil
import threading
import time
import warnings
from typing import Any, Callable

from backline.errors import BacklineError

GDB_TIMEOUT = 60.0

# pygdbmi's parser complains (through a deprecated logging call) about the script field of the
# "=breakpoint-modified" record gdb sends at every logpoint hit; the record is not needed
logging.getLogger("pygdbmi").setLevel(logging.ERROR)
warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"pygdbmi\.")


class GdbError(BacklineError):
    """gdb refused a request (its message is the error)."""


class GdbMi:
    def __init__(self, on_console: Callable[[str], None] | None = None, gdb: str = "gdb"):
        from pygdbmi.gdbcontroller import GdbController

        if shutil.which(gdb) is None:
            raise BacklineError("gdb is needed to debug a live process (apt-get install gdb)")
        self._ctl = GdbController(command=[gdb, "--interpreter=mi3", "-q", "-nx"])
        self._tokens = itertools.count(100)
        self._cv = threading.Condition()
        self._results: dict[int, dict] = {}
        self._console: dict[int, list[str]] = {}      # console output seen while a request was open
        self._open: int | None = None
        self.on_console = on_console
        self.state = "stopped"
        self.stop_event: dict[str, Any] | None = None
        self.stops = 0
        self.exited: dict[str, Any] | None = None
        self._closing = False
        self._reader = threading.Thread(target=self._read, name="gdb-mi-reader", daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ reading
    def _read(self) -> None:
        while not self._closing:
            try:
                records = self._ctl.get_gdb_response(timeout_sec=0.05, raise_error_on_timeout=False)
            except Exception:  # noqa: BLE001 - gdb went away; wake everyone up
                with self._cv:
                    self.state = "gone"
                    self._cv.notify_all()
                return
            if not records:
                continue
            with self._cv:
                for rec in records:
                    self._dispatch(rec)
                self._cv.notify_all()

    def _dispatch(self, rec: dict) -> None:
        kind, msg = rec.get("type"), rec.get("message")
        if kind == "result" and rec.get("token") is not None:
            self._results[int(rec["token"])] = rec
        elif kind == "notify" and msg == "stopped":
            self.state = "stopped"
            self.stop_event = rec.get("payload") or {}
            self.stops += 1
            if str(self.stop_event.get("reason", "")).startswith("exited"):
                self.exited = self.stop_event
        elif kind == "notify" and msg == "running":
            self.state = "running"
        elif kind in ("console", "target", "output") and isinstance(rec.get("payload"), str):
            text = rec["payload"]
            if self._open is not None:
                self._console.setdefault(self._open, []).append(text)
            if self.on_console is not None:
                try:
                    self.on_console(text)
                except Exception:  # noqa: BLE001 - a failing log write must not stop the reader
                    pass

    # ------------------------------------------------------------ requests
    def request(self, command: str, timeout: float = GDB_TIMEOUT) -> dict[str, Any]:
        """Send one MI command; its ``^done``/``^running`` payload, or GdbError on ``^error``."""
        payload, _console = self.request_with_console(command, timeout)
        return payload

    def request_with_console(self, command: str, timeout: float = GDB_TIMEOUT) -> tuple[dict[str, Any], str]:
        token = next(self._tokens)
        with self._cv:
            self._open = token
        self._ctl.write(f"{token}{command}", read_response=False, timeout_sec=5)
        deadline = time.monotonic() + timeout
        with self._cv:
            while token not in self._results:
                left = deadline - time.monotonic()
                if left <= 0 or self.state == "gone":
                    self._open = None
                    raise GdbError(f"gdb did not answer {command.split()[0]} in {timeout:.0f} s")
                self._cv.wait(min(left, 0.5))
            rec = self._results.pop(token)
            console = "".join(self._console.pop(token, []))
            self._open = None
        if rec.get("message") == "error":
            msg = (rec.get("payload") or {}).get("msg", "error")
            raise GdbError(msg)
        return rec.get("payload") or {}, console

    def console(self, command: str, timeout: float = GDB_TIMEOUT) -> str:
        """A gdb console command (``gcore``, ``info line``); its printed output."""
        quoted = command.replace("\\", "\\\\").replace('"', '\\"')
        _payload, text = self.request_with_console(f'-interpreter-exec console "{quoted}"', timeout)
        return text

    def wait_stopped(self, timeout: float | None, since: int) -> bool:
        """Until a stop after the ``since``-th one (True), or ``timeout`` seconds (False)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cv:
            while self.stops <= since and self.state != "gone":
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cv.wait(0.2 if left is None else min(left, 0.2))
            return self.stops > since

    def close(self) -> None:
        self._closing = True
        try:
            self._ctl.exit()
        except Exception:  # noqa: BLE001 - already gone
            pass
