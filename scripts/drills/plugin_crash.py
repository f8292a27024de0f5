"""Native crash in a plugin: a codec loaded with dlopen dereferences NULL on a malformed upload.

Real programs: ``mediad`` (C, a thread per connection, HTTP on 127.0.3.1:8080) loads codec
plugins with ``dlopen``; ``libcodec_webp.so`` looks up the VP8X chunk of an upload and reads
its width without checking that the chunk was found.  ``supervisor`` (Python) runs mediad
under gdb, which writes the core at the SIGSEGV, and restarts it.  ``upload-api`` (Python,
ISO-stamped layout) posts images from three workers: in-flight uploads are reset when mediad
dies, and uploads during the restart are refused.  Noise: a chronic cache warning, 415s for
BMP uploads, an old traceback in upload-api's log, healthy transcodes.  Layout: zip with the
core in a nested tar.gz and the binaries beside it.
"""

from __future__ import annotations

import http.client
import logging
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

from kit import Bundle, Drill, allow_cores, kernel_cores, kill_tree, roles, take_core, ticks, write_truth
from logfmt import at, setup

NAME = "plugin-crash"
CLASS = "native crash in a plugin"
SEED = 1106
MEDIAD = ("127.0.3.1", 8080)

HOST_SOURCE = r"""
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ_MAX (256 * 1024)
typedef int (*decode_fn)(const unsigned char *, size_t, int *, int *);
struct codec { const char *type; const char *file; decode_fn decode; };
static struct codec codecs[] = { { "image/png", "libcodec_png.so", 0 }, { "image/webp", "libcodec_webp.so", 0 } };
static FILE *logf;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static void logmsg(const char *level, const char *msg, const char *arg) {
    time_t t = time(NULL); struct tm tm; gmtime_r(&t, &tm);
    char stamp[32]; strftime(stamp, sizeof stamp, "%b %d %H:%M:%S", &tm);
    pthread_mutex_lock(&log_lock);
    fprintf(logf, "%s media01 mediad[%d]: %s: %s%s\n", stamp, getpid(), level, msg, arg ? arg : "");
    fflush(logf);
    pthread_mutex_unlock(&log_lock);
}

static void reply(int fd, int code, const char *status, const char *body) {
    char buf[512];
    int n = snprintf(buf, sizeof buf, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s", code, status, strlen(body), body);
    write(fd, buf, n);
}

static void *serve(void *arg) {
    int fd = (int)(long)arg;
    char *req = malloc(REQ_MAX + 1);
    size_t have = 0; char *end = NULL;
    while (!end && have < REQ_MAX) {
        ssize_t n = read(fd, req + have, REQ_MAX - have);
        if (n <= 0) { close(fd); free(req); return NULL; }
        have += n; req[have] = 0; end = strstr(req, "\r\n\r\n");
    }
    size_t clen = 0; char ctype[64] = "";
    char *h = strcasestr(req, "Content-Length:"); if (h) clen = strtoul(h + 15, NULL, 10);
    h = strcasestr(req, "Content-Type:"); if (h) sscanf(h + 13, " %63[^\r\n]", ctype);
    size_t head = end + 4 - req;
    while (have < head + clen && have < REQ_MAX) {
        ssize_t n = read(fd, req + have, REQ_MAX - have);
        if (n <= 0) break;
        have += n;
    }
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        if (strcmp(codecs[i].type, ctype) == 0) {
            int w = 0, hgt = 0;
            if (codecs[i].decode((unsigned char *)req + head, clen, &w, &hgt) != 0) {
                reply(fd, 422, "Unprocessable Entity", "{\"error\":\"undecodable image\"}");
            } else {
                char body[96]; snprintf(body, sizeof body, "{\"width\":%d,\"height\":%d}", w, hgt);
                reply(fd, 200, "OK", body);
            }
            close(fd);
            free(req);
            return NULL;
        }
    }
    logmsg("warning", "unsupported media type ", ctype);
    reply(fd, 415, "Unsupported Media Type", "{\"error\":\"unsupported media type\"}");
    close(fd);
    free(req);
    return NULL;
}

int main(int argc, char **argv) {
    logf = fopen(argc > 2 ? argv[2] : "mediad.log", "a");
    const char *dir = argc > 1 ? argv[1] : "plugins";
    for (size_t i = 0; i < sizeof codecs / sizeof codecs[0]; i++) {
        char path[512]; snprintf(path, sizeof path, "%s/%s", dir, codecs[i].file);
        void *lib = dlopen(path, RTLD_NOW);
        if (!lib) { logmsg("error", "cannot load plugin ", dlerror()); return 1; }
        codecs[i].decode = (decode_fn)dlsym(lib, "codec_decode");
        logmsg("info", "loaded plugin ", codecs[i].file);
    }
    logmsg("warning", "plugin libcodec_heif.so not found; HEIF uploads disabled", NULL);
    int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(8080) };
    inet_pton(AF_INET, "127.0.3.1", &a.sin_addr);
    if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 64)) { perror("bind"); return 1; }
    logmsg("info", "mediad 4.1.0 listening on 127.0.3.1:8080", NULL);
    for (;;) {
        int c = accept(s, NULL, NULL);
        if (c < 0) continue;
        pthread_t t; pthread_attr_t at; pthread_attr_init(&at);
        pthread_attr_setdetachstate(&at, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&at, 256 * 1024);
        pthread_create(&t, &at, serve, (void *)(long)c);
    }
}
"""

PNG_SOURCE = r"""
#include <stddef.h>
#include <string.h>
static unsigned be32(const unsigned char *p) { return (unsigned)p[0] << 24 | p[1] << 16 | p[2] << 8 | p[3]; }
int codec_decode(const unsigned char *data, size_t len, int *w, int *h) {
    if (len < 24 || memcmp(data, "\x89PNG\r\n\x1a\n", 8) != 0) return -1;
    *w = (int)be32(data + 16); *h = (int)be32(data + 20);
    return 0;
}
"""

WEBP_SOURCE = r"""
#include <stddef.h>
#include <stdint.h>
#include <string.h>
struct vp8x { uint8_t flags, reserved[3], width[3], height[3]; };
static uint32_t le32(const unsigned char *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static const struct vp8x *find_chunk(const unsigned char *data, size_t len, const char *fourcc) {
    size_t off = 12;
    while (off + 8 <= len) {
        uint32_t size = le32(data + off + 4);
        if (memcmp(data + off, fourcc, 4) == 0) return (const struct vp8x *)(data + off + 8);
        off += 8 + size + (size & 1);
    }
    return NULL;
}
static int canvas_size(const struct vp8x *hdr, int *w, int *h) {
    *w = 1 + (hdr->width[0] | hdr->width[1] << 8 | hdr->width[2] << 16);
    *h = 1 + (hdr->height[0] | hdr->height[1] << 8 | hdr->height[2] << 16);
    return 0;
}
int codec_decode(const unsigned char *data, size_t len, int *w, int *h) {
    if (len < 12 || memcmp(data, "RIFF", 4) != 0 || memcmp(data + 8, "WEBP", 4) != 0) return -1;
    const struct vp8x *hdr = find_chunk(data, len, "VP8X");   /* extended files only: not checked */
    return canvas_size(hdr, w, h);
}
"""


def png(w: int, h: int) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\x0dIHDR" + w.to_bytes(4, "big") + h.to_bytes(4, "big") + b"\x08\x06\x00\x00\x00" + bytes(200)


def webp(w: int, h: int, extended: bool = True) -> bytes:
    body = b"WEBP"
    if extended:
        body += b"VP8X" + (10).to_bytes(4, "little") + b"\x10\x00\x00\x00" + (w - 1).to_bytes(3, "little") + (h - 1).to_bytes(3, "little")
    body += b"VP8L" + (64).to_bytes(4, "little") + bytes(64)
    return b"RIFF" + len(body).to_bytes(4, "little") + body


def supervisor(log_path: str, exe: str, plugins: str, mediad_log: str, core_dir: str, seconds: str) -> None:
    """Keep mediad running; keep the core of a crash (kernel core, or gdb's where the kernel
    hands cores to a helper)."""
    log = setup(log_path, "python", "supervisor")
    end = time.time() + float(seconds)
    restarts = 0
    kernel = kernel_cores()
    while time.time() < end:
        core = Path(core_dir) / f"core.mediad.{restarts}"
        log.info("starting mediad (restart policy: always, delay 1 s)")
        argv = [exe, plugins, mediad_log]
        if not kernel:
            argv = ["gdb", "-batch", "-nx", "-ex", "run", "-ex", f"generate-core-file {core}", "-ex", "kill",
                    "--args", *argv]
        p = subprocess.Popen(argv, cwd=core_dir, preexec_fn=allow_cores, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True)
        try:
            outp, _ = p.communicate(timeout=max(1, end - time.time()))
        except subprocess.TimeoutExpired:
            kill_tree(p.pid)
            p.communicate()
            break
        if kernel and p.returncode < 0:
            name = signal.Signals(-p.returncode).name
            kept = take_core(Path(core_dir), p.pid, core)
            log.error("mediad (pid %d) terminated by %s%s", p.pid, name,
                      f"; core saved as {core.name}" if kept else "; no core")
        elif not kernel and core.exists():
            sig = re.search(r"received signal (\w+)", outp)
            log.error("mediad terminated by %s; core saved as %s", sig.group(1) if sig else "a signal", core.name)
        else:
            log.error("mediad exited with status %s", p.returncode)
        restarts += 1
        log.warning("restarting mediad in 1 s (restart %d)", restarts)
        time.sleep(1.0)


def upload_api(log_path: str, seconds: str, poison_after: str) -> None:
    log = setup(log_path, "iso", "upload.worker", program="upload-api")
    end = time.time() + float(seconds)
    poison_at = time.time() + float(poison_after)
    counter = [99100]
    lock = threading.Lock()

    def worker(n: int) -> None:
        while time.time() < end:
            with lock:
                counter[0] += 1
                upload = counter[0]
                poison = time.time() >= poison_at and poison_at > 0
                if poison:
                    globals()["_poisoned"] = True
            kind = upload % 7
            if poison and not globals().get("_sent"):
                globals()["_sent"] = True
                ctype, data = "image/webp", webp(800, 600, extended=False)   # the customer's simple-format file
            elif kind == 3:
                ctype, data = "image/bmp", b"BM" + bytes(120)
            elif kind in (1, 5):
                ctype, data = "image/webp", webp(640 + upload % 100, 480)
            else:
                ctype, data = "image/png", png(1024, 768)
            try:
                c = http.client.HTTPConnection(*MEDIAD, timeout=5)
                c.request("POST", f"/transcode?upload={upload}", body=data + bytes(60000),
                          headers={"Content-Type": ctype})
                r = c.getresponse()
                r.read()
                c.close()
                if r.status == 200:
                    log.info("upload %d (%s, %d bytes) transcoded", upload, ctype, len(data))
                else:
                    log.warning("upload %d (%s) rejected by mediad: HTTP %d", upload, ctype, r.status)
            except OSError as exc:
                log.error("transcode of upload %d failed: %s", upload, exc)
            time.sleep(0.15)

    threads = [threading.Thread(target=worker, args=(i,), name=f"transcode-{i}") for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def history(d: Drill, api_log: Path, mlog: Path, start: float, end: float) -> None:
    rng = d.rng
    log = setup(api_log, "iso", "upload.worker", "upload.quota", program="upload-api")
    events = [(t, "cache") for t in ticks(rng, start, end, 1100)]
    events += [(t, "ok") for t in ticks(rng, start, end, 150)]
    events.append((end - 2.7 * 3600, "crash"))
    with open(mlog, "w") as m:
        for t, what in sorted(events):
            with at(t):
                if what == "cache":
                    stamp = time.strftime("%b %d %H:%M:%S", time.gmtime(t))
                    m.write(f"{stamp} media01 mediad[{rng.randint(900, 999)}]: warning: thumbnail cache "
                            f"{rng.randint(90, 97)}% full, evicting\n")
                elif what == "ok":
                    log.info("upload %d (image/png, %d bytes) transcoded", rng.randint(90000, 99000), rng.randint(20000, 90000))
                else:
                    try:
                        quota_for({"tier": "gold"})
                    except KeyError:
                        logging.getLogger("upload.quota").exception("quota lookup failed; allowing upload")
    for h in log.handlers[:]:
        h.close()
        log.removeHandler(h)


def quota_for(account: dict) -> int:
    return {"free": 10, "pro": 100}[account["tier"]]


def build(out: Path) -> None:
    with Drill(NAME, SEED) as d:
        now = time.time()
        exe = d.cc("mediad", HOST_SOURCE, "-O0", "-pthread", "-ldl")
        pdir = d.path("plugins/x").parent
        for name, src in (("libcodec_png.so", PNG_SOURCE), ("libcodec_webp.so", WEBP_SOURCE)):
            (pdir / name).write_bytes(d.cc(name.removesuffix(".so"), src, "-O1", shared=True).read_bytes())
        api_log, mlog, slog = d.path("logs/upload-api.log"), d.path("logs/mediad.log"), d.path("logs/supervisor.log")
        core_dir = d.path("cores/x").parent
        history(d, api_log, mlog, now - 8 * 3600, now - 20)
        d.start_capture(MEDIAD)
        sup = d.role(__file__, "supervisor", slog, exe, pdir, mlog, core_dir, 9, out="supervisor.out")
        d.wait_port(*MEDIAD, timeout=30, proc=sup)
        api = d.role(__file__, "upload_api", api_log, 7, 2.5, out="api.out")
        d.wait(api, 40)
        time.sleep(0.3)
        pcap = d.finish_capture("media01-8080.pcap")
        kill_tree(sup.pid)
        cores = sorted(core_dir.glob("core.mediad.*"))
        if not cores:
            raise RuntimeError("mediad did not crash" + slog.read_text()[-400:])
        crash = (Bundle()
                 .add(f"var/crash/{cores[0].name}", cores[0])
                 .add("var/crash/README.txt", "cores collected by supervisor on media01\n"))
        (out / "media01-support.zip").write_bytes(
            Bundle()
            .add("logs/mediad.log", mlog)
            .add("logs/supervisor.log", slog)
            .add("logs/upload-api.log", api_log)
            .add("bin/mediad", exe)
            .add("bin/plugins/libcodec_png.so", pdir / "libcodec_png.so")
            .add("bin/plugins/libcodec_webp.so", pdir / "libcodec_webp.so")
            .add("crash.tar.gz", crash.tgz_bytes())
            .add("net/media01-8080.pcap", pcap)
            .zip_bytes())
        write_truth(out, NAME, codes=["DUMP.CRASH", "DUMP.NULL_READ"], artifact="*core.mediad*",
                    contains=["codec_webp"],
                    description="mediad's WebP plugin (libcodec_webp.so, loaded with dlopen) read the canvas size "
                                "through a NULL VP8X chunk pointer on a simple-format WebP upload and crashed "
                                "with SIGSEGV; in-flight uploads were reset and uploads during the restart were "
                                "refused.")


if __name__ == "__main__":
    roles({"supervisor": supervisor, "upload_api": upload_api})
