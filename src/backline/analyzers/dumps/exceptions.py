"""Names of crash reasons: Windows exception codes / NTSTATUS, fast-fail codes,
POSIX signals with their ``si_code`` values, and macOS Mach exceptions.

The names are the ones rust-minidump and Breakpad print, so crash reasons
compare directly with their outputs.

>>> crash_reason("windows", 0xC0000005, 0, (1, 0x45))
('EXCEPTION_ACCESS_VIOLATION_WRITE', 69)
>>> crash_reason("linux", 11, 0, (), 0x0)
('SIGSEGV', 0)
>>> crash_reason("linux", 11, 1, (), 0x10)
('SIGSEGV / SEGV_MAPERR', 16)
>>> crash_reason("windows", 0xC0000409, 0, (7,), 0x1000)[0]
'EXCEPTION_STACK_BUFFER_OVERRUN / FAST_FAIL_FATAL_APP_EXIT'
>>> crash_reason("linux", 0xFFFFFFFF, 0, (), 0x45)
('DUMP_REQUESTED', 69)
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

WINDOWS_EXCEPTIONS = {
    0x40010005: "DBG_CONTROL_C",
    0x40010008: "DBG_CONTROL_BREAK",
    0x4001000A: "DBG_PRINTEXCEPTION_WIDE_C",
    0x406D1388: "MS_VC_EXCEPTION_SET_THREAD_NAME",
    0x80000002: "EXCEPTION_DATATYPE_MISALIGNMENT",
    0x80000003: "EXCEPTION_BREAKPOINT",
    0x80000004: "EXCEPTION_SINGLE_STEP",
    0x80000001: "EXCEPTION_GUARD_PAGE",
    0xC0000005: "EXCEPTION_ACCESS_VIOLATION",
    0xC0000006: "EXCEPTION_IN_PAGE_ERROR",
    0xC0000008: "EXCEPTION_INVALID_HANDLE",
    0xC000001D: "EXCEPTION_ILLEGAL_INSTRUCTION",
    0xC0000025: "EXCEPTION_NONCONTINUABLE_EXCEPTION",
    0xC0000026: "EXCEPTION_INVALID_DISPOSITION",
    0xC000008C: "EXCEPTION_ARRAY_BOUNDS_EXCEEDED",
    0xC000008D: "EXCEPTION_FLT_DENORMAL_OPERAND",
    0xC000008E: "EXCEPTION_FLT_DIVIDE_BY_ZERO",
    0xC000008F: "EXCEPTION_FLT_INEXACT_RESULT",
    0xC0000090: "EXCEPTION_FLT_INVALID_OPERATION",
    0xC0000091: "EXCEPTION_FLT_OVERFLOW",
    0xC0000092: "EXCEPTION_FLT_STACK_CHECK",
    0xC0000093: "EXCEPTION_FLT_UNDERFLOW",
    0xC0000094: "EXCEPTION_INT_DIVIDE_BY_ZERO",
    0xC0000095: "EXCEPTION_INT_OVERFLOW",
    0xC0000096: "EXCEPTION_PRIV_INSTRUCTION",
    0xC00000FD: "EXCEPTION_STACK_OVERFLOW",
    0xC0000194: "EXCEPTION_POSSIBLE_DEADLOCK",
    0xC0000409: "EXCEPTION_STACK_BUFFER_OVERRUN",
    0xC0000374: "STATUS_HEAP_CORRUPTION",
    0xE06D7363: "UNHANDLED_CPP_EXCEPTION",
    0xC0000420: "STATUS_ASSERTION_FAILURE",
    0xC0000602: "STATUS_FAIL_FAST_EXCEPTION",
    0xC000041D: "STATUS_FATAL_USER_CALLBACK_EXCEPTION",
    0xC0000017: "STATUS_NO_MEMORY",
    0xC0000135: "STATUS_DLL_NOT_FOUND",
    0xC0000142: "STATUS_DLL_INIT_FAILED",
    0xC06D007E: "DELAYLOAD_MODULE_NOT_FOUND",
    0xC06D007F: "DELAYLOAD_PROC_NOT_FOUND",
    0x80000029: "STATUS_UNWIND_CONSOLIDATE",
    0xC0000027: "STATUS_UNWIND",
    0xC000070A: "STATUS_THREADPOOL_HANDLE_EXCEPTION",
    0xE0434352: "CLR_EXCEPTION",
    0xE0434F4D: "CLR_EXCEPTION_V4",
}

ACCESS_TYPES = {0: "READ", 1: "WRITE", 8: "EXEC"}

FAST_FAIL = {
    0: "FAST_FAIL_LEGACY_GS_VIOLATION", 1: "FAST_FAIL_VTGUARD_CHECK_FAILURE",
    2: "FAST_FAIL_STACK_COOKIE_CHECK_FAILURE", 3: "FAST_FAIL_CORRUPT_LIST_ENTRY",
    4: "FAST_FAIL_INCORRECT_STACK", 5: "FAST_FAIL_INVALID_ARG",
    6: "FAST_FAIL_GS_COOKIE_INIT", 7: "FAST_FAIL_FATAL_APP_EXIT",
    8: "FAST_FAIL_RANGE_CHECK_FAILURE", 9: "FAST_FAIL_UNSAFE_REGISTRY_ACCESS",
    10: "FAST_FAIL_GUARD_ICALL_CHECK_FAILURE", 11: "FAST_FAIL_GUARD_WRITE_CHECK_FAILURE",
    12: "FAST_FAIL_INVALID_FIBER_SWITCH", 13: "FAST_FAIL_INVALID_SET_OF_CONTEXT",
    14: "FAST_FAIL_INVALID_REFERENCE_COUNT", 18: "FAST_FAIL_INVALID_JUMP_BUFFER",
    19: "FAST_FAIL_MRDATA_MODIFIED", 20: "FAST_FAIL_CERTIFICATION_FAILURE",
    21: "FAST_FAIL_INVALID_EXCEPTION_CHAIN", 22: "FAST_FAIL_CRYPTO_LIBRARY",
    23: "FAST_FAIL_INVALID_CALL_IN_DLL_CALLOUT", 24: "FAST_FAIL_INVALID_IMAGE_BASE",
    25: "FAST_FAIL_DLOAD_PROTECTION_FAILURE", 26: "FAST_FAIL_UNSAFE_EXTENSION_CALL",
    27: "FAST_FAIL_DEPRECATED_SERVICE_INVOKED", 28: "FAST_FAIL_INVALID_BUFFER_ACCESS",
    29: "FAST_FAIL_INVALID_BALANCED_TREE", 30: "FAST_FAIL_INVALID_NEXT_THREAD",
    31: "FAST_FAIL_GUARD_ICALL_CHECK_SUPPRESSED", 32: "FAST_FAIL_APCS_DISABLED",
    33: "FAST_FAIL_INVALID_IDLE_STATE", 34: "FAST_FAIL_MRDATA_PROTECTION_FAILURE",
    35: "FAST_FAIL_UNEXPECTED_HEAP_EXCEPTION", 36: "FAST_FAIL_INVALID_LOCK_STATE",
    37: "FAST_FAIL_GUARD_JUMPTABLE", 38: "FAST_FAIL_INVALID_LONGJUMP_TARGET",
    39: "FAST_FAIL_INVALID_DISPATCH_CONTEXT", 40: "FAST_FAIL_INVALID_THREAD",
    41: "FAST_FAIL_INVALID_SYSCALL_NUMBER", 42: "FAST_FAIL_INVALID_FILE_OPERATION",
    43: "FAST_FAIL_LPAC_ACCESS_DENIED", 44: "FAST_FAIL_GUARD_SS_FAILURE",
    45: "FAST_FAIL_LOADER_CONTINUITY_FAILURE", 46: "FAST_FAIL_GUARD_EXPORT_SUPPRESSION_FAILURE",
    47: "FAST_FAIL_INVALID_CONTROL_STACK", 48: "FAST_FAIL_SET_CONTEXT_DENIED",
    49: "FAST_FAIL_INVALID_IAT", 50: "FAST_FAIL_HEAP_METADATA_CORRUPTION",
    51: "FAST_FAIL_PAYLOAD_RESTRICTION_VIOLATION", 52: "FAST_FAIL_LOW_LABEL_ACCESS_DENIED",
    53: "FAST_FAIL_ENCLAVE_CALL_FAILURE", 54: "FAST_FAIL_UNHANDLED_LSS_EXCEPTON",
    55: "FAST_FAIL_ADMINLESS_ACCESS_DENIED", 56: "FAST_FAIL_UNEXPECTED_CALL",
    57: "FAST_FAIL_CONTROL_INVALID_RETURN_ADDRESS", 58: "FAST_FAIL_UNEXPECTED_HOST_BEHAVIOR",
    59: "FAST_FAIL_FLAGS_CORRUPTION", 60: "FAST_FAIL_VEH_CORRUPTION",
    61: "FAST_FAIL_ETW_CORRUPTION", 62: "FAST_FAIL_RIO_ABORT",
    63: "FAST_FAIL_INVALID_PFN", 0xFFFFFFFF: "FAST_FAIL_INVALID_FAST_FAIL_CODE",
}

SIGNALS = {1: "SIGHUP", 2: "SIGINT", 3: "SIGQUIT", 4: "SIGILL", 5: "SIGTRAP", 6: "SIGABRT",
           7: "SIGBUS", 8: "SIGFPE", 9: "SIGKILL", 10: "SIGUSR1", 11: "SIGSEGV", 12: "SIGUSR2",
           13: "SIGPIPE", 14: "SIGALRM", 15: "SIGTERM", 16: "SIGSTKFLT", 17: "SIGCHLD",
           18: "SIGCONT", 19: "SIGSTOP", 20: "SIGTSTP", 21: "SIGTTIN", 22: "SIGTTOU",
           23: "SIGURG", 24: "SIGXCPU", 25: "SIGXFSZ", 26: "SIGVTALRM", 27: "SIGPROF",
           28: "SIGWINCH", 29: "SIGIO", 30: "SIGPWR", 31: "SIGSYS"}

SI_GENERIC = {0x80: "SI_KERNEL", -1: "SI_QUEUE", -2: "SI_TIMER", -3: "SI_MESGQ",
              -4: "SI_ASYNCIO", -5: "SI_SIGIO", -6: "SI_TKILL", -7: "SI_DETHREAD", -60: "SI_ASYNCNL"}
SI_CODES = {
    "SIGSEGV": {1: "SEGV_MAPERR", 2: "SEGV_ACCERR", 3: "SEGV_BNDERR", 4: "SEGV_PKUERR"},
    "SIGILL": {1: "ILL_ILLOPC", 2: "ILL_ILLOPN", 3: "ILL_ILLADR", 4: "ILL_ILLTRP",
               5: "ILL_PRVOPC", 6: "ILL_PRVREG", 7: "ILL_COPROC", 8: "ILL_BADSTK"},
    "SIGFPE": {1: "FPE_INTDIV", 2: "FPE_INTOVF", 3: "FPE_FLTDIV", 4: "FPE_FLTOVF",
               5: "FPE_FLTUND", 6: "FPE_FLTRES", 7: "FPE_FLTINV", 8: "FPE_FLTSUB"},
    "SIGBUS": {1: "BUS_ADRALN", 2: "BUS_ADRERR", 3: "BUS_OBJERR", 4: "BUS_MCEERR_AR",
               5: "BUS_MCEERR_AO"},
    "SIGTRAP": {1: "TRAP_BRKPT", 2: "TRAP_TRACE"},
}

MAC_EXCEPTIONS = {1: "EXC_BAD_ACCESS", 2: "EXC_BAD_INSTRUCTION", 3: "EXC_ARITHMETIC",
                  4: "EXC_EMULATION", 5: "EXC_SOFTWARE", 6: "EXC_BREAKPOINT", 7: "EXC_SYSCALL",
                  8: "EXC_MACH_SYSCALL", 9: "EXC_RPC_ALERT", 10: "EXC_CRASH",
                  11: "EXC_RESOURCE", 12: "EXC_GUARD", 0x43507378: "Simulated Exception"}
MAC_KERN = {1: "KERN_INVALID_ADDRESS", 2: "KERN_PROTECTION_FAILURE", 0x32: "KERN_CODESIGN_ERROR",
            13: "EXC_I386_GPFLT"}


@lru_cache(maxsize=None)
def windows_code_tables() -> dict[str, dict[int, str]]:
    """``{"exception": {...}, "winerror": {...}, "ntstatus": {...}}`` from ``data/windows_codes.txt``."""
    tables: dict[str, dict[int, str]] = {}
    cur: dict[int, str] = {}
    text = resources.files("backline.analyzers.dumps").joinpath("data/windows_codes.txt").read_text("utf-8")
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            cur = tables.setdefault(line.strip("[]"), {})
            continue
        code, _, name = line.partition("\t")
        cur.setdefault(int(code, 16), name.strip())
    return tables


def windows_code_name(code: int) -> str | None:
    """Name of a Windows exception code: exception names first, then Win32 errors, then NTSTATUS.

    >>> windows_code_name(0xC000000D), windows_code_name(0xC00000FD)
    ('STATUS_INVALID_PARAMETER', 'EXCEPTION_STACK_OVERFLOW')
    """
    t = windows_code_tables()
    return (t.get("exception", {}).get(code) or t.get("winerror", {}).get(code)
            or t.get("ntstatus", {}).get(code) or WINDOWS_EXCEPTIONS.get(code))


#: Exception codes Breakpad's Linux writer uses that are not signals (rust-minidump's
#: ``ExceptionCodeLinux``): a dump written on request, without a crash.
LINUX_SPECIAL_CODES = {0xFFFFFFFF: "DUMP_REQUESTED"}


def crash_reason(os_short: str, code: int, flags: int, params: tuple[int, ...],
                 address: int = 0) -> tuple[str, int]:
    """(crash reason text, crash address) for an exception record, the way rust-minidump names it."""
    if os_short == "windows":
        name = windows_code_name(code)
        if code == 0xC0000005 and params:
            acc = ACCESS_TYPES.get(params[0])
            addr = params[1] if len(params) > 1 else address
            return (f"EXCEPTION_ACCESS_VIOLATION_{acc}" if acc else "EXCEPTION_ACCESS_VIOLATION"), addr
        if code == 0xC0000006 and len(params) >= 2:
            acc = ACCESS_TYPES.get(params[0])
            base = f"EXCEPTION_IN_PAGE_ERROR_{acc}" if acc else "EXCEPTION_IN_PAGE_ERROR"
            return base, params[1]
        if code == 0xC0000409 and params:
            ff = FAST_FAIL.get(params[0] & 0xFFFFFFFF, f"{params[0] & 0xFFFFFFFF:#010x}")
            return f"EXCEPTION_STACK_BUFFER_OVERRUN / {ff}", address
        return (name or f"{code:#010x}"), address
    if os_short in ("linux", "android"):
        special = LINUX_SPECIAL_CODES.get(code)
        if special is not None:     # not a signal: the flags are shown as a number
            return (f"{special} / {flags:#010x}" if flags else special), address
        sig = SIGNALS.get(code)
        if sig is None:
            return f"{code:#010x}", address
        sflags = flags - (1 << 32) if flags & 0x80000000 else flags
        if sflags == 0:
            return sig, address
        sub = SI_GENERIC.get(sflags) or SI_CODES.get(sig, {}).get(sflags)
        return (f"{sig} / {sub}" if sub else f"{sig} / {flags:#010x}"), address
    if os_short in ("mac", "ios"):
        exc = MAC_EXCEPTIONS.get(code)
        if code == 0x43507378:
            return "Simulated Exception", address
        if exc is None:
            return f"unknown {code:#010x} / {flags:#010x}", address
        if code == 1:
            return f"{exc} / {MAC_KERN.get(flags, f'{flags:#010x}')}", address
        return f"{exc} / {flags:#010x}", address
    return f"{code:#010x} / {flags:#010x}", address


def signal_name(number: int) -> str:
    """``signal_name(11) == 'SIGSEGV'``; unknown numbers as ``SIG<n>``."""
    return SIGNALS.get(number, f"SIG{number}")
