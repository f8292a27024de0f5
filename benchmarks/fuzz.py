#!/usr/bin/env python3
"""Coverage-guided fuzzing of every parser that reads customer bytes (atheris + libFuzzer).

    benchmarks/fuzz.py TARGET --seconds N      # one target
    benchmarks/fuzz.py all --seconds N         # every target, one after the other
    benchmarks/fuzz.py TARGET --replay FILE..  # run saved inputs once (no atheris needed)
    benchmarks/fuzz.py --list
    benchmarks/fuzz.py                         # (no target, as `make bench` runs it) all, 10 s each

Targets (what each one feeds the bytes to):

    minidump  minidump / microdump parser, stack walk (with the corpus's Breakpad symbols),
              crash analysis, JSON output
    elfcore   ELF core reader, unwinder, crash analysis, JSON output
    sym       Breakpad .sym parser, lookups, STACK CFI / STACK WIN evaluation
    net       capture reader (pcap, pcapng, Network Monitor, gzip) + the compiled engine,
              findings and summaries; the record iterator too
    evtx      the .evtx glue over the Rust `evtx` reader (records, grouping, findings)
    log       the whole text-log analyzer: reader, encodings, decompression, header
              detection, the compiled line engine, records, template mining, findings
    logheader header format detection and splitting, time stamp parsing, masking, mining
    text      text crash traces (Java, Python, .NET, hs_err, jstack, faulthandler) and the
              evidence text-kind sniffer
    archive   evidence intake: zip, tar (+gzip/bzip2/xz/zstd), compressed files, nesting,
              classification, time-range probing

Seeds come from the shared corpus (``../shared/corpus`` or ``BACKLINE_CORPUS``), read in place:
a temporary folder of links to the small files of each target is made at run time (the
archive target also builds small archives there), and libFuzzer reads at most ``max_len``
bytes of each.  New inputs go to ``--work DIR`` (a temporary folder unless given, so a
corpus can grow over several runs); crash, timeout and out-of-memory inputs to
``--artifacts DIR``.

What counts as a finding: any exception other than the documented clear errors
(:class:`backline.errors.BacklineError` and its subclasses), an input running longer than
``--timeout`` seconds (libFuzzer ``-timeout``), memory past ``--rss-mb`` (libFuzzer
``-rss_limit_mb``; ``RLIMIT_AS`` is set as a hard backstop, so a runaway allocation ends as a
MemoryError, itself a finding).  For the archive target an input that intake records as
"internal error" (intake turns unexpected exceptions into refusals) is a finding too.

Backline's Python modules are instrumented (``atheris.instrument_imports``) so coverage
guides the mutations; the compiled Cython engines (``analyzers/net/_engine``,
``analyzers/logs/_engine``) and the native libraries (evtx, zstandard, capstone) are not
instrumented: they are exercised, but their branches do not guide the fuzzer.

Exit status: 0 no finding; 1 a finding (the input is saved under ``--artifacts``); for
``all`` the number of targets with findings.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))


def corpus_dir() -> Path:
    env = os.environ.get("BACKLINE_CORPUS")
    return Path(env) if env else ROOT.parent / "shared" / "corpus"


# --------------------------------------------------------------------------- targets
# Each target: seed globs (relative to the corpus), the largest seed file linked, max_len,
# an optional seed generator, and a setup function that imports (instrumented) and returns
# the function that takes one input.

class Target:
    def __init__(self, name: str, globs: tuple[str, ...], max_len: int, *, seed_max: int = 2 << 20,
                 generate=None):
        self.name, self.globs, self.max_len, self.seed_max, self.generate = name, globs, max_len, seed_max, generate
        self.setup = None

    def __call__(self, setup):
        self.setup = setup
        return self


TARGETS: dict[str, Target] = {}


def target(name: str, globs: tuple[str, ...], max_len: int, **kw):
    t = Target(name, globs, max_len, **kw)
    TARGETS[name] = t
    return t


def _bases() -> list[Path]:
    return [Path(p) for p in {"/dev/shm", tempfile.gettempdir()} if os.access(p, os.W_OK)]


def _scratch(kind: str = "scratch") -> Path:
    """A temporary folder named with this process's id (libFuzzer ends the process with C
    ``exit``, so Python's clean-up never runs: :func:`_sweep` removes them on a later run)."""
    base = Path("/dev/shm") if os.access("/dev/shm", os.W_OK) else Path(tempfile.gettempdir())
    return Path(tempfile.mkdtemp(prefix=f"backline-fuzz-{os.getpid()}-{kind}-", dir=base))


def _sweep() -> None:
    """Remove the temporary folders of fuzz runs whose process has ended."""
    for base in _bases():
        for d in base.glob("backline-fuzz-*-*"):
            pid = d.name.split("-")[2]
            if not pid.isdigit() or int(pid) == os.getpid():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                shutil.rmtree(d, ignore_errors=True)
            except PermissionError:
                pass


@target("minidump", ("dumps/**/*.dmp",), 64 << 10, seed_max=256 << 10)
def _minidump():
    from backline.analyzers.dumps.analysis import analyze_crash
    from backline.analyzers.dumps.json_out import report_to_json
    from backline.analyzers.dumps.minidump.microdump import is_microdump, parse_microdump
    from backline.analyzers.dumps.minidump.parser import parse_minidump
    from backline.analyzers.dumps.minidump.process import report_from_minidump
    from backline.analyzers.dumps.symbols import SymbolStore

    c = corpus_dir() / "dumps"
    store = SymbolStore([p for p in (c / "breakpad/symbols", c / "symbolic/symbols") if p.is_dir()])

    def one(data: bytes) -> None:
        if data[:4] != b"MDMP" and is_microdump(data[:8192]):
            md = parse_microdump(data.decode("utf-8", "replace").splitlines(), "fuzz.dmp")
        else:
            md = parse_minidump(data, "fuzz.dmp")
        rep = report_from_minidump(md, store)
        rep = analyze_crash(rep, lambda a, n: md.memory.read_ptr(a, n))
        json.dumps(report_to_json(rep), default=str)
    return one


@target("elfcore", ("dumps/**/*.core", "dumps/**/core*"), 64 << 10, seed_max=1 << 20)
def _elfcore():
    from backline.analyzers.dumps.analysis import analyze_crash
    from backline.analyzers.dumps.elfcore import load_core
    from backline.analyzers.dumps.json_out import report_to_json

    path = _scratch() / "fuzz.core"

    def one(data: bytes) -> None:
        path.write_bytes(data)
        rep = analyze_crash(load_core(path))
        json.dumps(report_to_json(rep), default=str)
    return one


@target("sym", ("dumps/**/*.sym",), 16 << 10, seed_max=1 << 20)
def _sym():
    from backline.analyzers.dumps.stackwalk.cfi import cfi_unwind, win_fpo, win_program
    from backline.analyzers.dumps.symbols import SymbolFile

    regs64 = {"rip": 0x1010, "rsp": 0x7000, "rbp": 0x7100, "rbx": 1, "r12": 2}
    regs32 = {"eip": 0x1010, "esp": 0x7000, "ebp": 0x7100, "ebx": 1, "esi": 2, "edi": 3}

    def read(addr: int) -> int | None:
        return (addr * 2654435761) & 0xFFFFFFFF if 0x6000 <= addr < 0x8000 else None

    def one(data: bytes) -> None:
        sym = SymbolFile.parse_text(data.decode("utf-8", "replace"), "fuzz.sym")
        offsets = {0, 1, 0x1000, 0xFFFFFFFF}
        for i, (_, start, size) in enumerate(sym.functions()):
            if i >= 40:
                break
            offsets.update((start, start + max(0, size - 1), start + size))
        for off in sorted(offsets):
            sym.lookup(off)
            rules = sym.cfi_rules(off)
            if rules:
                cfi_unwind(rules, regs64, read, 8)
                cfi_unwind(rules, regs32, read, 4)
            info = sym.win_info(off)
            if info is not None:
                win_program(info, regs32, read, 4)
                win_fpo(info, regs32, read, 4, True)
        assert isinstance(sym.has_functions, bool)
    return one


@target("net", ("net/*.pcap", "net/*.pcapng", "net/*.cap", "net/*.pcap.gz", "net/*.pcapng.gz"), 64 << 10,
        seed_max=4 << 20)
def _net():
    from backline.analyzers.net.capture import analyze_reader
    from backline.analyzers.net.findings import build_findings
    from backline.analyzers.net.reader import CaptureReader
    from backline.analyzers.net.summary import conversations, expert_summary, oracle_counts

    def one(data: bytes) -> None:
        st = analyze_reader(CaptureReader.from_bytes(data, name="fuzz.pcap"))
        build_findings(st, "fuzz.pcap")
        oracle_counts(st)
        conversations(st)
        expert_summary(st)
        r = CaptureReader.from_bytes(data, name="fuzz.pcap")
        for _ in r.packets():
            pass
    return one


@target("evtx", ("logs/evtx/*.evtx",), 128 << 10, seed_max=4 << 20)
def _evtx():
    from backline.analyzers.base import AnalysisContext
    from backline.analyzers.logs import evtx_analyzer
    from backline.analyzers.logs.evtx_analyzer import analyze_evtx

    # the native reader runs in a worker that is given up on after this long per chunk; kept
    # well under the harness's own time limit so that a stuck chunk shows as handled, not a hang
    evtx_analyzer.CHUNK_SECONDS = 2.0
    path = _scratch() / "fuzz.evtx"

    def one(data: bytes) -> None:
        path.write_bytes(data)
        for _ in analyze_evtx(path, "fuzz.evtx", AnalysisContext()):
            pass
    return one


_LOG_GLOBS = ("logs/**/*.log", "logs/**/*.txt", "dumps/text/**/*.txt", "dumps/text/**/*.log")


def _gen_logs(seed_dir: Path) -> None:
    """Compressed and UTF-16 variants of a few log heads (the reader sniffs them by magic)."""
    import bz2
    import gzip
    import lzma

    logs = sorted((corpus_dir() / "logs/loghub-2k").glob("*/*.log"))[:3]
    for i, p in enumerate(logs):
        with open(p, "rb") as fh:
            head = fh.read(4096)
        (seed_dir / f"gen-{i}.log.gz").write_bytes(gzip.compress(head))
        (seed_dir / f"gen-{i}.log.bz2").write_bytes(bz2.compress(head))
        (seed_dir / f"gen-{i}.log.xz").write_bytes(lzma.compress(head))
        (seed_dir / f"gen-{i}.utf16.log").write_bytes(head.decode("utf-8", "replace").encode("utf-16"))


@target("log", _LOG_GLOBS, 4 << 10, seed_max=1 << 20, generate=_gen_logs)
def _log():
    from backline.analyzers.base import AnalysisContext
    from backline.analyzers.logs.text_analyzer import analyze_text_log

    path = _scratch() / "fuzz.log"

    def one(data: bytes) -> None:
        path.write_bytes(data)
        for _ in analyze_text_log(path, "fuzz.log", AnalysisContext()):
            pass
    return one


@target("logheader", _LOG_GLOBS, 2 << 10, seed_max=1 << 20)
def _logheader():
    from datetime import date

    from backline.analyzers.logs.formats import detect_format
    from backline.analyzers.logs.masking import canonical, mask_words
    from backline.analyzers.logs.miner import TemplateMiner
    from backline.analyzers.logs.timestamps import TsParser, find_timestamp

    def one(data: bytes) -> None:
        lines = data.decode("utf-8", "replace").splitlines()[:300]
        fmt = detect_format(lines)
        parser = TsParser(default_year=2020, default_date=date(2020, 6, 1))
        miner = TemplateMiner()
        for line in lines:
            h = fmt.split(line)
            if h is not None and h.ts_kind:
                parser.parse(h.ts_kind, h.ts_text)
            found = find_timestamp(line)
            if found is not None:
                kind, s, e = found
                parser.parse(kind, line[s:e])
            msg = h.message if h is not None else line
            canonical(" ".join(mask_words(msg)))
            miner.add(msg)
        for _ in miner.templates():
            pass
    return one


@target("text", ("dumps/text/**/*", "dumps/linux/expected/*.txt"), 16 << 10, seed_max=1 << 20)
def _text():
    from backline.analyzers.dumps.analysis import analyze_crash
    from backline.analyzers.dumps.json_out import report_to_json
    from backline.analyzers.dumps.text import parse_text_crash_text
    from backline.evidence import classify_head

    def one(data: bytes) -> None:
        classify_head(data, "fuzz.txt", len(data))
        for rep in parse_text_crash_text(data.decode("utf-8", "replace"), "fuzz.txt"):
            json.dumps(report_to_json(analyze_crash(rep)), default=str)
    return one


def _gen_archives(seed_dir: Path) -> None:
    """Small archives of every container intake reads, built from corpus files at run time."""
    import bz2
    import gzip
    import lzma

    c = corpus_dir()
    members = [p for p in (c / "dumps/text/gen/py_traceback_explicit.txt", c / "net/cs_tcp_refuseconnection.pcapng",
                           c / "dumps/rust-minidump/invalid-range.dmp") if p.is_file()]
    logs = sorted((c / "logs/loghub-2k").glob("*/*.log"))[:1]
    blobs = [(p.name, p.read_bytes()) for p in members]
    blobs += [(p.name, p.read_bytes()[:3000]) for p in logs]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for n, b in blobs:
            z.writestr(f"bundle/{n}", b)
    (seed_dir / "gen.zip").write_bytes(buf.getvalue())
    inner = buf.getvalue()
    buf2 = io.BytesIO()
    with zipfile.ZipFile(buf2, "w", zipfile.ZIP_STORED) as z:
        z.writestr("inner.zip", inner)
        z.writestr("notes.txt", b"see inner.zip\n")
    (seed_dir / "gen-nested.zip").write_bytes(buf2.getvalue())
    for mode, ext in (("w", "tar"), ("w:gz", "tgz"), ("w:bz2", "tar.bz2"), ("w:xz", "tar.xz")):
        tb = io.BytesIO()
        with tarfile.open(fileobj=tb, mode=mode, format=tarfile.PAX_FORMAT) as t:
            for n, b in blobs[:2]:
                ti = tarfile.TarInfo(f"logs/{n}")
                ti.size, ti.mtime = len(b), 1_700_000_000
                t.addfile(ti, io.BytesIO(b))
            ti = tarfile.TarInfo("logs/link")
            ti.type, ti.linkname = tarfile.SYMTYPE, blobs[0][0]
            t.addfile(ti)
        (seed_dir / f"gen.{ext}").write_bytes(tb.getvalue())
    if blobs:
        n, b = blobs[-1]
        (seed_dir / "gen.log.gz").write_bytes(gzip.compress(b))
        (seed_dir / "gen.log.bz2").write_bytes(bz2.compress(b))
        (seed_dir / "gen.log.xz").write_bytes(lzma.compress(b))
        try:
            import zstandard
            (seed_dir / "gen.log.zst").write_bytes(zstandard.ZstdCompressor().compress(b))
        except ImportError:
            pass


@target("archive", ("net/*.gz",), 32 << 10, seed_max=256 << 10, generate=_gen_archives)
def _archive():
    from backline.evidence import IntakeLimits, collect

    scratch = _scratch()
    path = scratch / "evidence"
    limits = IntakeLimits(max_total_bytes=64 << 20, max_file_bytes=16 << 20, max_entries=2000,
                          ratio_grace_bytes=1 << 20, head_bytes=16 << 10)

    def one(data: bytes) -> None:
        path.write_bytes(data)
        work = scratch / "work"
        try:
            intake = collect([path], work, limits=limits, require_readable=False)
            bad = [r for r in intake.refusals if r.reason.startswith("internal error")]
            if bad:
                raise AssertionError(f"intake hid an unexpected exception: {bad[0].reason}")
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return one


def _gen_selftest(seed_dir: Path) -> None:
    (seed_dir / "plain").write_bytes(b"nothing to see")
    (seed_dir / "trigger").write_bytes(b"TRIGGER")


@target("selftest", (), 64, generate=_gen_selftest)
def _selftest():
    """Checks the harness itself (not in ``all``): ``BACKLINE_FUZZ_SELFTEST`` = crash, hang, oom or
    clear picks what the input ``TRIGGER`` does; every kind but ``clear`` must be reported."""
    from backline.errors import FormatError

    mode = os.environ.get("BACKLINE_FUZZ_SELFTEST", "clear")

    def one(data: bytes) -> None:
        if not data.startswith(b"TRIGGER"):
            return
        if mode == "crash":
            raise IndexError("selftest: an unexpected exception")
        if mode == "hang":
            while True:
                pass
        if mode == "oom":
            hog = []
            while True:
                hog.append(bytearray(16 << 20))
        raise FormatError("selftest: a clear error", artifact="selftest", locator="offset:0")
    return one


# --------------------------------------------------------------------------- running
def seed_files(t: Target) -> list[Path]:
    """Corpus files for ``t`` no larger than its ``seed_max`` (read in place, never copied)."""
    c = corpus_dir()
    out: set[Path] = set()
    for g in t.globs:
        for p in c.glob(g):
            if p.is_file() and not p.name.endswith((".json", ".md", ".sh")) and 0 < p.stat().st_size <= t.seed_max:
                out.add(p)
    return sorted(out)


def make_seed_dir(t: Target) -> Path:
    d = _scratch(f"seeds-{t.name}")
    for i, p in enumerate(seed_files(t)):
        (d / f"{i:04d}-{p.name}").symlink_to(p)
    if t.generate is not None:
        t.generate(d)
    return d


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def run_one(args: argparse.Namespace) -> int:
    t = TARGETS[args.target]
    if args.replay:
        one = t.setup()
        from backline.errors import BacklineError
        bad = 0
        for f in args.replay:
            data = Path(f).read_bytes()[: t.max_len if args.truncate else None]
            started = time.perf_counter()
            try:
                one(data)
                verdict = "ok"
            except BacklineError as exc:
                verdict = f"clear error: {type(exc).__name__}: {exc}"
            except Exception as exc:  # noqa: BLE001 - a finding
                import traceback
                traceback.print_exc()
                verdict = f"FINDING: {type(exc).__name__}: {exc}"
                bad += 1
            print(f"{f}: {verdict} ({time.perf_counter() - started:.2f} s)")
        return 1 if bad else 0

    import atheris

    _sweep()
    with atheris.instrument_imports(include=["backline"]):
        one = t.setup()
    from backline.errors import BacklineError

    def test_one_input(data: bytes) -> None:
        out_of_memory = False
        try:
            one(data)
        except BacklineError:
            pass            # a clear error naming the place: the documented outcome of bad input
        except MemoryError:
            out_of_memory = True
        if out_of_memory:   # raised here, once the input's memory is freed, so it can be reported
            raise MemoryError(f"the address-space cap was reached (--rss-mb {args.rss_mb} + 512 MB)")

    # warm up once so imports done lazily inside the target count in the baseline
    try:
        test_one_input(b"")
    except Exception:  # noqa: BLE001 - the empty input is fuzzed properly below
        pass
    if args.rss_mb:
        cap = _vm_size() + (args.rss_mb + 512) * (1 << 20)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    seeds = make_seed_dir(t)
    work = Path(args.work) if args.work else _scratch(f"work-{t.name}")
    work.mkdir(parents=True, exist_ok=True)
    artifacts = Path(args.artifacts) if args.artifacts else Path(tempfile.gettempdir()) / "backline-fuzz-artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    # libFuzzer reads the peak RSS from getrusage, which Linux carries over an exec: a fuzzer started
    # by a big process (a pytest worker) would count that process's peak; the limit is on top of it
    inherited_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
    rss_limit = args.rss_mb + inherited_mb if args.rss_mb else 0
    flags = [sys.argv[0], f"-max_total_time={args.seconds}", f"-timeout={args.timeout}",
             f"-rss_limit_mb={rss_limit}", f"-max_len={args.max_len or t.max_len}",
             f"-artifact_prefix={artifacts}/{t.name}-", "-print_final_stats=1", "-print_pcs=0"]
    if args.seed is not None:
        flags.append(f"-seed={args.seed}")
    flags += [str(work), str(seeds)]
    print(f"fuzz {t.name}: {len(seed_files(t))} corpus seeds + generated, work {work}, "
          f"artifacts {artifacts}/{t.name}-*", file=sys.stderr, flush=True)
    atheris.Setup(flags, test_one_input)
    atheris.Fuzz()
    return 0


_STAT = re.compile(r"stat::number_of_executed_units:\s*(\d+)")


def run_all(args: argparse.Namespace) -> int:
    names = [n for n in TARGETS if n != "selftest"] if args.target == "all" else args.target.split(",")
    rows = []
    failed = 0
    for name in names:
        cmd = [sys.executable, __file__, name, "--seconds", str(args.seconds), "--timeout", str(args.timeout),
               "--rss-mb", str(args.rss_mb)]
        if args.work:
            cmd += ["--work", str(Path(args.work) / name)]
        if args.artifacts:
            cmd += ["--artifacts", args.artifacts]
        if args.seed is not None:
            cmd += ["--seed", str(args.seed)]
        started = time.monotonic()
        p = subprocess.run(cmd, capture_output=True, text=True, errors="replace",
                           timeout=args.seconds + args.timeout + 300)
        took = time.monotonic() - started
        m = _STAT.search(p.stderr)
        execs = int(m.group(1)) if m else 0
        found = p.returncode != 0
        failed += found
        what = "none" if not found else _finding_line(p.stderr)
        rows.append((name, took, execs, what))
        print(f"{name:10s} {took:7.1f} s {execs:10d} execs  {what}", flush=True)
        if found:
            sys.stderr.write(p.stderr[-6000:])
    return failed


def _finding_line(err: str) -> str:
    for pat in (r"=== Uncaught Python exception: ===\s*\n(.+)", r"(ALARM: working on the last Unit for \d+ seconds)",
                r"(out-of-memory \(used: \d+Mb; exceeds: \d+Mb\))", r"(MemoryError.*)", r"(==\d+== ERROR: .+)"):
        m = re.search(pat, err)
        if m:
            return "FINDING: " + m.group(1).strip()
    return "FINDING: " + (err.strip().splitlines() or ["(no output)"])[-1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("target", nargs="?", help="a target name, several joined by commas, or 'all'")
    ap.add_argument("--seconds", type=int, default=60, help="fuzzing time per target (default 60)")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may run (default 10)")
    ap.add_argument("--rss-mb", type=int, default=2048, help="memory cap in MB (default 2048)")
    ap.add_argument("--max-len", type=int, default=0, help="largest input (default: per target)")
    ap.add_argument("--work", help="folder for the growing corpus (default: a new temporary folder)")
    ap.add_argument("--artifacts", help="folder for crash / timeout / oom inputs")
    ap.add_argument("--seed", type=int, help="libFuzzer random seed (default: random)")
    ap.add_argument("--replay", nargs="+", metavar="FILE", help="run these inputs once and report")
    ap.add_argument("--truncate", action="store_true", help="with --replay: cut inputs to max_len")
    ap.add_argument("--list", action="store_true", help="list the targets and their seed counts")
    args = ap.parse_args(argv)
    if args.list:
        for name, t in TARGETS.items():
            if name == "selftest":
                continue
            print(f"{name:10s} max_len {t.max_len:7d}  {len(seed_files(t)):4d} corpus seeds")
        return 0
    if not args.target:                 # `make bench` runs every script bare: a short sweep
        args.target, args.seconds = "all", min(args.seconds, 10)
    if args.target == "all" or "," in args.target:
        return run_all(args)
    if args.target not in TARGETS:
        ap.error(f"unknown target {args.target!r}; one of {', '.join(TARGETS)} or all")
    return run_one(args)


if __name__ == "__main__":
    sys.exit(main())
