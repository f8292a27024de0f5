"""A live Linux process as a debugger target, on top of gdb's machine interface.

``backline dbg --pid PID`` attaches gdb (the engine: ptrace, DWARF, breakpoints are
gdb's, not ours) and answers the same questions as a dump: threads and frames from
gdb, modules and regions from ``/proc/PID/maps``, memory through gdb, symbols from
the module files (as for cores).  Live-only commands: ``bp``, ``bl``, ``bc``, ``g``,
``p``, ``t``, ``lp`` (logpoints: gdb ``dprintf``), ``.detach``, ``.dump /ma FILE``
(``gcore``), ``!pystack`` (Python stacks through py-spy, for Python processes).

Logpoint lines go to a log file, one per hit, with an ISO 8601 UTC time stamp,
so ``backline logs`` and ``backline analyze`` read them like any product log::

    2026-12-07T11:20:03.412518Z logpoint 1 server.c:88: n=42
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
import sys
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from backline.analyzers.dumps.model import CrashModule, CrashReport, CrashThread, StackFrame
from backline.debugger.gdbmi import GdbError, GdbMi
from backline.debugger.target import ExceptionRecord, Region, SymbolEntry, Target
from backline.errors import BacklineError, UsageError

MAX_FRAMES = 256
_MARK = re.compile(r"^@@bl-lp(\d+)@@ ?(.*)$", re.DOTALL)
_FIELD = re.compile(r"\{([^{}:]+)(?::([dxsupfc]))?\}")
#: logpoint field kinds: (C cast of the expression, printf conversion)
_PRINTF = {"d": ("long long", "%lld"), "x": ("unsigned long long", "%#llx"), "u": ("unsigned long long", "%llu"),
           "f": ("double", "%g"), "s": ("", "%s"), "p": ("", "%p"), "c": ("", "%c")}
_CPU = {"x86_64": "amd64", "aarch64": "arm64", "i686": "x86", "i386": "x86"}
_AMD64 = ("rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rbp", "rsp", "r8", "r9", "r10", "r11", "r12", "r13",
          "r14", "r15", "rip", "eflags", "cs", "ss", "ds", "es", "fs", "gs", "fs_base", "gs_base")


def attach(pid: int, log_path: Path | None = None) -> "LiveTarget":
    """Attach to ``pid`` and stop it (it runs again after ``g`` or ``.detach``, or when the session ends)."""
    if not Path(f"/proc/{pid}").is_dir():
        raise BacklineError(f"no process with pid {pid}")
    t = LiveTarget(name=f"pid {pid}", path=f"/proc/{pid}", kind="live",
                   report=CrashReport(source_format="live"), cpu=_CPU.get(platform.machine(), platform.machine()),
                   ptr_size=8 if sys.maxsize > 2 ** 32 else 4)
    t.pid, t.log_path, t.logpoints = pid, log_path, {}
    t._log_lock = threading.Lock()
    t.attached, t.images, t._regnames, t._maps, t.stopped_thread = False, {}, None, [], 0
    t.mi = GdbMi(on_console=t._console)
    try:
        for setting in ("mi-async on", "pagination off", "confirm off", "print pretty off"):
            t.mi.request(f"-gdb-set {setting}")
        since = t.mi.stops
        t.mi.request(f"-target-attach {pid}")
        t.mi.wait_stopped(30, since)
    except GdbError as exc:
        t.mi.close()
        raise BacklineError(f"cannot attach to pid {pid}: {exc.message} (are you root, or is "
                            "/proc/sys/kernel/yama/ptrace_scope 0?)") from None
    t.attached = True
    t.refresh()
    return t


class LiveTarget(Target):
    __slots__ = ("pid", "mi", "log_path", "logpoints", "_log_lock", "attached", "images", "_regnames",
                 "_maps", "stopped_thread")

    # ------------------------------------------------------------ snapshot
    def refresh(self) -> None:
        """Threads, frames and modules as they are now (after every stop)."""
        import dataclasses

        self._maps = _read_maps(self.pid)
        self.report = dataclasses.replace(self.report, modules=self._modules())
        threads: list[CrashThread] = []
        crashing = None
        info = self.mi.request("-thread-info")
        current = info.get("current-thread-id")
        stop = self.mi.stop_event or {}
        for i, th in enumerate(info.get("threads", [])):
            m = re.search(r"LWP (\d+)", th.get("target-id", ""))
            tid = int(m.group(1)) if m else th.get("id")
            try:
                stack = self.mi.request(f"-stack-list-frames --thread {th['id']} 0 {MAX_FRAMES - 1}").get("stack", [])
            except GdbError:
                stack = []
            frames = tuple(self._frame(k, f) for k, f in enumerate(stack))
            if th.get("id") == current:
                self.stopped_thread = i
                if stop.get("reason") == "signal-received" and stop.get("signal-name") not in ("SIGINT", "SIGSTOP"):
                    crashing = i
            threads.append(CrashThread(id=tid, frames=frames, name=th.get("name"),
                                       crashed=(crashing == i), state=th.get("state")))
        self.report = dataclasses.replace(
            self.report, threads=tuple(threads), crashing_thread=crashing,
            os="Linux", os_version=platform.release(), cpu=self.cpu, pid=self.pid,
            process_name=_comm(self.pid))

    def _frame(self, index: int, f: dict) -> StackFrame:
        addr = int(f.get("addr", "0"), 16) if f.get("addr", "").startswith("0x") else None
        mod = self._module_for(addr) if addr is not None else None
        return StackFrame(index=index, trust="context" if index == 0 else "gdb", instruction=addr,
                          module=mod[0] if mod else (Path(f["from"]).name if f.get("from") else None),
                          module_offset=(addr - mod[1]) if (mod and addr is not None) else None,
                          function=f.get("func"), function_offset=self._func_offset(addr, f.get("func")),
                          file=f.get("fullname") or f.get("file"),
                          line=int(f["line"]) if f.get("line", "").isdigit() else None)

    def _func_offset(self, addr: int | None, func: str | None) -> int | None:
        if addr is None or func is None:
            return None
        hit = self.lookup(addr)
        return hit[2] if hit and hit[1] else None

    def _modules(self) -> tuple[CrashModule, ...]:
        spans: dict[str, list[int]] = {}
        for lo, hi, _perms, _off, path in self._maps:
            if path.startswith("/") and not path.startswith("/dev/"):
                s = spans.setdefault(path, [lo, hi])
                s[0], s[1] = min(s[0], lo), max(s[1], hi)
        return tuple(CrashModule(name=Path(p).name, base=lo, size=hi - lo, path=p,
                                 symbols_loaded=self._image(p) is not None)
                     for p, (lo, hi) in sorted(spans.items(), key=lambda kv: kv[1][0]))

    def _module_for(self, addr: int) -> tuple[str, int] | None:
        for m in self.report.modules:
            if m.base <= addr < m.base + m.size:
                return m.name, m.base
        for lo, hi, _p, _o, path in self._maps:
            if lo <= addr < hi and path.startswith("/"):
                base = min(x[0] for x in self._maps if x[4] == path)
                return Path(path).name, base
        return None

    def _image(self, path: str):
        if path not in self.images:
            from backline.analyzers.dumps.elfsym import open_image
            try:
                self.images[path] = open_image(Path(path)) if os.path.isfile(path) else None
            except Exception:  # noqa: BLE001 - not an ELF file (a mapped data file): no symbols
                self.images[path] = None
        return self.images[path]

    def _bias(self, module: CrashModule, img) -> int:
        return module.base - (img.min_vaddr & ~0xFFF)

    # ------------------------------------------------------------ Target answers
    def read_bytes(self, address: int, size: int) -> list[int | None]:
        size = max(0, min(size, 1 << 20))
        out: list[int | None] = []
        while len(out) < size:
            a = address + len(out)
            n = min(size - len(out), 4096 - (a % 4096))
            try:
                got = self.mi.request(f"-data-read-memory-bytes {a:#x} {n}").get("memory", [])
            except GdbError:
                got = []
            buf: list[int | None] = [None] * n
            for blk in got:
                start = int(blk["begin"], 16) - a
                data = bytes.fromhex(blk.get("contents", ""))
                for k, b in enumerate(data):
                    if 0 <= start + k < n:
                        buf[start + k] = b
            out.extend(buf)
        return out

    def regions(self) -> list[Region]:
        out = []
        mods = {m.path: m for m in self.report.modules}
        for lo, hi, perms, _off, path in self._maps:
            usage = ("Stack" if path == "[stack]" else "Heap" if path == "[heap]" else
                     f"File: {path}" if path.startswith("/") else (path or "<anonymous>"))
            m = mods.get(path)
            out.append(Region(lo, hi - lo, perms, "MEM_COMMIT",
                              "MEM_IMAGE" if m else ("MEM_MAPPED" if path.startswith("/") else "MEM_PRIVATE"),
                              None, "r" in perms, m.name if m else None, usage))
        return out

    def exception_record(self) -> ExceptionRecord | None:
        stop = self.mi.stop_event or {}
        if stop.get("reason") != "signal-received":
            return None
        frame = stop.get("frame") or {}
        addr = int(frame["addr"], 16) if str(frame.get("addr", "")).startswith("0x") else None
        name = stop.get("signal-name", "?")
        import signal as _signal
        code = getattr(_signal, name, None)
        return ExceptionRecord(code=int(code) if code is not None else 0, name=name, address=addr,
                               description=stop.get("signal-meaning", ""))

    def frame_registers(self, thread: int, frame: int) -> dict[str, int]:
        threads = self.mi.request("-thread-info").get("threads", [])
        if not (0 <= thread < len(threads)):
            return {}
        if self._regnames is None:
            self._regnames = self.mi.request("-data-list-register-names").get("register-names", [])
        try:
            vals = self.mi.request(f"-data-list-register-values --thread {threads[thread]['id']} "
                                   f"--frame {frame} x").get("register-values", [])
        except GdbError:
            return {}
        out = {}
        for v in vals:
            name = self._regnames[int(v["number"])] if int(v["number"]) < len(self._regnames) else ""
            if name and (self.cpu != "amd64" or name in _AMD64) and str(v.get("value", "")).startswith("0x"):
                out[name] = int(v["value"], 16)
        return out

    def functions(self, module: CrashModule) -> Iterator[SymbolEntry]:
        img = self._image(module.path) if module.path else None
        if img is None:
            return
        bias = self._bias(module, img)
        for addr, size, name in img.functions():
            yield SymbolEntry(module.name, name, addr + bias, size)

    def lookup(self, address: int) -> tuple[str, str | None, int] | None:
        m = next((x for x in self.report.modules if x.base <= address < x.base + x.size), None)
        if m is None:
            return None
        img = self._image(m.path) if m.path else None
        if img is not None:
            hit = img.symbol_at(address - self._bias(m, img))
            if hit is not None:
                from backline.analyzers.dumps.elfsym import demangle
                return m.name, demangle(hit[0]), hit[1]
        return m.name, None, address - m.base

    def source_line(self, address: int) -> tuple[str, int] | None:
        try:
            text = self.mi.console(f"info line *{address:#x}")
        except GdbError:
            return None
        m = re.search(r'Line (\d+) of "([^"]+)"', text)
        return (m.group(2), int(m.group(1))) if m else None

    def system(self) -> dict[str, Any]:
        out = super().system()
        out["cmdline"] = _cmdline(self.pid)
        out["dump_time"] = datetime.now(timezone.utc)
        out["dump_time_source"] = "live process: now"
        try:
            ticks = os.sysconf("SC_CLK_TCK")
            start = int(Path(f"/proc/{self.pid}/stat").read_text().rsplit(")", 1)[1].split()[19]) / ticks
            boot = float(Path("/proc/uptime").read_text().split()[0])
            out["process_created"] = datetime.fromtimestamp(datetime.now(timezone.utc).timestamp() - boot + start,
                                                            timezone.utc)
        except (OSError, ValueError, IndexError):
            pass
        return out

    # ------------------------------------------------------------ logpoints
    def _console(self, text: str) -> None:
        m = _MARK.match(text)
        if m is None or self.log_path is None:
            return
        n = int(m.group(1))
        where = self.logpoints.get(n, {}).get("location", "?")
        now = datetime.now(timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
        line = f"{now} logpoint {n} {where}: {m.group(2).rstrip(chr(10))}\n"
        with self._log_lock:
            with open(self.log_path, "a", encoding="utf-8") as fh:
                fh.write(line)

    def python_stacks(self) -> list[dict] | None:
        """Python stacks of every thread (py-spy), or None when the process is not Python."""
        exe = os.path.basename(os.path.realpath(f"/proc/{self.pid}/exe"))
        if not exe.startswith("python"):
            return None
        spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
        if not os.path.exists(spy):
            raise BacklineError("py-spy is needed for Python stacks (pip install py-spy)")
        run = subprocess.run([spy, "dump", "--pid", str(self.pid), "--json", "--nonblocking"],
                             capture_output=True, text=True, timeout=60)
        if run.returncode != 0:
            raise BacklineError(f"py-spy could not read pid {self.pid}: {run.stderr.strip()[:300]}")
        import json
        return json.loads(run.stdout)

    # ------------------------------------------------------------ lifetime
    def commands(self):
        from backline.debugger.cmds_live import COMMANDS
        return COMMANDS

    def close(self) -> None:
        try:
            if self.attached:
                self.mi.request("-target-detach", timeout=10)
                self.attached = False
        except BacklineError:
            pass
        finally:
            self.mi.close()
            for img in self.images.values():
                if img is not None:
                    img.close()

    def require_attached(self) -> None:
        if not self.attached:
            raise UsageError("the process is detached (or has exited); start a new session to debug it again")


def logpoint_format(template: str) -> tuple[str, list[str]]:
    """``"n={n} name={name:s}"`` -> (printf format, arguments) for gdb's dprintf.

    >>> logpoint_format("n={n} who={user->name:s} at {p:p}")
    ('n=%lld who=%s at %p', ['(long long)(n)', 'user->name', 'p'])
    """
    args: list[str] = []

    def sub(m: re.Match) -> str:
        expr, kind = m.group(1).strip(), m.group(2) or "d"
        cast, spec = _PRINTF[kind]
        args.append(f"({cast})({expr})" if cast else expr)
        return spec

    fmt = _FIELD.sub(sub, template.replace("%", "%%"))
    return fmt, args


def _read_maps(pid: int) -> list[tuple[int, int, str, int, str]]:
    out = []
    try:
        text = Path(f"/proc/{pid}/maps").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        parts = line.split(None, 5)
        if len(parts) < 5:
            continue
        lo, hi = (int(x, 16) for x in parts[0].split("-"))
        out.append((lo, hi, parts[1], int(parts[2], 16), parts[5].strip() if len(parts) > 5 else ""))
    return out


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def _cmdline(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        return None
