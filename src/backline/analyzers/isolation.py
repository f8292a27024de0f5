"""Analyzer tasks in worker processes that can be killed: hard time and memory limits.

Each slot of the runner is a *supervisor* process (single-threaded: forked from a
single-threaded caller, or from multiprocessing's fork server when the caller has
threads, as the server's job runner does).  For every task the supervisor forks a
fresh *task process* that

* sets ``RLIMIT_DATA`` to what it holds when it starts plus the memory limit: the memory the
  analyzer allocates (heap, anonymous maps, thread stacks), but not the evidence files it maps
  read-only (a 10 GiB full-memory dump mapped by the minidump reader costs no budget), which is
  why this is not ``RLIMIT_AS``; and ``RLIMIT_CORE`` to 0 (a crash leaves no core file behind);
* keeps the soft time limit of :func:`backline.analyzers.runner.run_task` (Python code is
  interrupted and keeps what it yielded, with the traceback of where it was);
* has :mod:`faulthandler` write to a file, so a crash in native code, or a kill at the hard
  time limit (``SIGUSR1`` first, then ``SIGKILL``), leaves the Python stack of where it was.

The supervisor waits with ``wait4`` and reports how the task process ended (result, exit
status, signal, peak resident memory), so native code that never returns (a busy loop in
a C library) is killed at ``timeout + grace`` seconds and native code that allocates
without bound is stopped by the kernel at the memory limit.  The parent keeps a backstop
deadline and kills a supervisor that stops answering (its whole process group).
"""

from __future__ import annotations

import faulthandler
import multiprocessing
import os
import pickle
import select
import signal
import tempfile
import threading
import time
from dataclasses import dataclass

#: Extra seconds after the soft time limit before the task process is killed.
def kill_grace(timeout_s: float) -> float:
    """Seconds between the soft time limit (Python interrupted) and the kill (native code too).

    >>> kill_grace(0.5), kill_grace(900)
    (1.0, 30.0)
    """
    return min(30.0, max(1.0, timeout_s * 0.05))


@dataclass(frozen=True, slots=True)
class TaskEnd:
    """How one task process ended (sent from the supervisor to the runner)."""

    index: int
    result: bytes | None           # the pickled TaskResult, when the task finished
    exit_code: int | None          # exit status, when it exited without a result
    signal: int | None             # the signal that ended it
    killed_at_limit: bool          # killed by the supervisor at the hard time limit
    max_rss_kib: int               # peak resident memory of the task process
    fault: str                     # what faulthandler wrote (Python stacks at a crash or the kill)
    duration_s: float


_PRELOADED = False


def context():
    """``fork`` from a single-threaded process (cheap, and what the caller set up is there);
    the fork server when threads run (forking a threaded process may copy a held lock)."""
    global _PRELOADED
    if threading.active_count() == 1 and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    ctx = multiprocessing.get_context("forkserver")
    if not _PRELOADED:
        from backline.analyzers.registry import BUILTIN_ANALYZERS
        ctx.set_forkserver_preload(["backline.analyzers.runner", "backline.analyzers.isolation",
                                    *(spec.partition(":")[0] for spec in BUILTIN_ANALYZERS)])
        _PRELOADED = True
    return ctx


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Linux: get ``sig`` when the parent goes (a server killed with -9 leaves no analyzer or
    server worker running). Also the initializer of the worker processes an analyzer starts."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, int(sig), 0, 0, 0)     # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


# --------------------------------------------------------------------------- task process

def _data_now() -> int:
    """Bytes of the data segment this process holds now (``VmData``; 0 when unknown)."""
    try:
        with open("/proc/self/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmData:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _limit_memory(memory_mb: int | None) -> None:
    """``RLIMIT_DATA`` = what the process holds now + ``memory_mb``: the budget is what the analyzer
    allocates, whatever the process it was forked from already held."""
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    if memory_mb:
        limit = _data_now() + int(memory_mb) * 1024 * 1024
        soft, hard = resource.getrlimit(resource.RLIMIT_DATA)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))


def _task_process(task, out_fd: int, fault_fd: int, memory_mb: int | None) -> None:
    """Runs in the forked task process; never returns."""
    code = 0
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        die_with_parent()
        # forked from a daemonic supervisor, this process would inherit "daemonic: no children";
        # an analyzer may start its own workers (a large log read in byte ranges), which die with it
        multiprocessing.current_process()._config["daemon"] = False
        faulthandler.enable(file=fault_fd, all_threads=True)
        faulthandler.register(signal.SIGUSR1, file=fault_fd, all_threads=True, chain=False)
        _limit_memory(memory_mb)
        from backline.analyzers.runner import limit_reason, run_task
        cls, artifact, settings, index = task
        res = run_task(cls, artifact, settings, index)
        if memory_mb and res.run.reason.startswith("MemoryError"):
            res.run = limit_reason(res.run, f"memory limit of {memory_mb} MiB reached")
        try:
            data = pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # noqa: BLE001 - an unpicklable output is the analyzer's failure
            res.events.clear(), res.findings.clear(), res.facts.clear()
            res.run = limit_reason(res.run, f"its output cannot be sent back ({type(exc).__name__}: {exc})")
            data = pickle.dumps(res, protocol=pickle.HIGHEST_PROTOCOL)
        view = memoryview(data)
        while view:
            n = os.write(out_fd, view[:1 << 20])
            view = view[n:]
    except BaseException:  # noqa: BLE001 - whatever happens, exit without running the parent's cleanup
        code = 70
    finally:
        os._exit(code)


def _read_available(fd: int, sink: bytearray) -> bool:
    """Read what the pipe holds; False at end of file."""
    try:
        chunk = os.read(fd, 1 << 20)
    except BlockingIOError:
        return True
    if not chunk:
        return False
    sink += chunk
    return True


def _run_one(task, index: int, memory_mb: int | None, hard_s: float | None) -> TaskEnd:
    """Fork a task process for ``task``, collect its result, enforce the hard time limit."""
    r, w = os.pipe()
    fault = tempfile.TemporaryFile(prefix="backline-fault-")
    started = time.monotonic()
    pid = os.fork()
    if pid == 0:                                   # the task process
        os.close(r)
        _task_process(task, w, fault.fileno(), memory_mb)
    os.close(w)
    os.set_blocking(r, False)
    data = bytearray()
    deadline = started + hard_s if hard_s else None
    killed = False
    open_pipe = True
    status = rusage = None
    while True:
        if open_pipe:
            wait_s = 0.25 if deadline is None else max(0.0, min(0.25, deadline - time.monotonic()))
            ready, _, _ = select.select([r], [], [], wait_s)
            if ready:
                open_pipe = _read_available(r, data)
        else:
            time.sleep(0.02)
        done, status, rusage = os.wait4(pid, os.WNOHANG)
        if done == pid:
            while open_pipe and _read_available(r, data):   # what is left in the pipe
                pass
            break
        if deadline is not None and not killed and time.monotonic() >= deadline:
            killed = True
            try:
                os.kill(pid, signal.SIGUSR1)          # the Python stack of where it is stuck
                time.sleep(0.2)
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    os.close(r)
    fault.seek(0)
    fault_text = fault.read(20000).decode("utf-8", "replace")
    fault.close()
    exited = os.WIFEXITED(status)
    ok = exited and os.WEXITSTATUS(status) == 0 and bool(data) and not killed
    return TaskEnd(index=index, result=bytes(data) if ok else None,
                   exit_code=os.WEXITSTATUS(status) if exited else None,
                   signal=os.WTERMSIG(status) if os.WIFSIGNALED(status) else None,
                   killed_at_limit=killed, max_rss_kib=int(rusage.ru_maxrss) if rusage else 0,
                   fault=fault_text, duration_s=round(time.monotonic() - started, 4))


def supervisor(conn, memory_mb: int | None, hard_s: float | None) -> None:
    """The supervisor process: one task at a time, each in a fresh task process."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)   # the runner decides; Ctrl-C reaches it
    die_with_parent()
    try:
        os.setpgid(0, 0)                           # the runner kills the group as a backstop
    except OSError:
        pass
    while True:
        try:
            msg = conn.recv_bytes()
        except (EOFError, OSError):
            return
        if not msg:
            return
        index = int.from_bytes(msg[:8], "little")
        try:
            task = pickle.loads(msg[8:])
        except Exception as exc:  # noqa: BLE001 - e.g. a plug-in module missing here
            conn.send(TaskEnd(index, None, 71, None, False, 0, f"cannot load the task: {type(exc).__name__}: {exc}",
                              0.0))
            continue
        end = _run_one(task, index, memory_mb, hard_s)
        conn.send(end)


class Slot:
    """The runner's side of one supervisor process."""

    def __init__(self, ctx, memory_mb: int | None, hard_s: float | None):
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=supervisor, args=(child, memory_mb, hard_s), daemon=True,
                                name="backline-analyzer")
        self.proc.start()
        child.close()
        self.busy: tuple | None = None      # (index, cls, artifact, backstop deadline)

    def send(self, index: int, payload: bytes) -> None:
        self.conn.send_bytes(index.to_bytes(8, "little") + payload)

    def kill(self) -> None:
        pid = self.proc.pid
        try:
            if pid:
                os.killpg(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.kill()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.proc.join(5)
        self.conn.close()

    def close(self) -> None:
        try:
            self.conn.send_bytes(b"")
        except (OSError, ValueError):
            pass
        self.proc.join(2)
        if self.proc.is_alive():
            self.kill()
        else:
            self.conn.close()
