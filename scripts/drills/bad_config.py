"""Unhandled exception from a bad configuration: a Java service dies on ``cache.ttl.seconds=30s``.

Real programs: ``RateService`` (Java, ``com.sun.net.httpserver`` on 127.0.6.2:8088, logging
through ``java.util.logging`` with a log4j-style formatter; its earlier hours are written by
the same program in a replay mode, so the old handled SocketTimeoutException is a real Java
trace), a systemd-like ``supervisor`` (Python, journal in a syslog layout, restarts the service
three times then gives up), ``pricing-api`` (Python, JSON lines) asking the service for rates.
A config revision changes the TTL to ``30s``: RateService fails at startup with
``IllegalArgumentException`` caused by ``NumberFormatException: For input string: "30s"``, the
restarts fail the same way, pricing-api's connections are refused and it serves stale rates.
Noise: chronic heap warnings, the old SocketTimeoutException, healthy lookups.  Layout: two
archives side by side (the service host's tar.gz, the API host's zip).
"""

from __future__ import annotations

import json
import logging
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from kit import Bundle, Drill, need_tools, roles, write_truth
from logfmt import setup

NAME = "bad-config"
CLASS = "unhandled exception from a bad configuration"
SEED = 1107
RATES = ("127.0.6.2", 8088)

JAVA = r"""
package com.acme.rates;

import com.sun.net.httpserver.HttpServer;
import java.io.*;
import java.net.*;
import java.nio.charset.StandardCharsets;
import java.nio.file.*;
import java.time.*;
import java.time.format.DateTimeFormatter;
import java.util.*;
import java.util.logging.*;

public class RateService {
    static final Logger LOG = Logger.getLogger("com.acme.rates.RateService");
    static final Logger FEED = Logger.getLogger("com.acme.rates.FeedClient");

    static final class Log4jLayout extends java.util.logging.Formatter {
        static final DateTimeFormatter F = DateTimeFormatter.ofPattern("yyyy-MM-dd HH:mm:ss,SSS").withZone(ZoneOffset.UTC);
        @Override public String format(LogRecord r) {
            String level = r.getLevel() == Level.SEVERE ? "ERROR" : r.getLevel() == Level.WARNING ? "WARN"
                         : r.getLevel() == Level.INFO ? "INFO" : "DEBUG";
            StringBuilder sb = new StringBuilder();
            sb.append(F.format(r.getInstant())).append(" [").append(Thread.currentThread().getName()).append("] ")
              .append(String.format("%-5s", level)).append(' ').append(r.getLoggerName()).append(" - ")
              .append(formatMessage(r)).append('\n');
            if (r.getThrown() != null) {
                StringWriter sw = new StringWriter();
                r.getThrown().printStackTrace(new PrintWriter(sw));
                sb.append(sw);
            }
            return sb.toString();
        }
    }

    static void setupLog(String path) throws IOException {
        LogManager.getLogManager().reset();
        FileHandler h = new FileHandler(path, true);
        h.setFormatter(new Log4jLayout());
        h.setLevel(Level.ALL);
        for (Logger l : new Logger[] {LOG, FEED}) { l.addHandler(h); l.setLevel(Level.ALL); l.setUseParentHandlers(false); }
    }

    static int ttlSeconds(Properties p, String file) {
        String raw = p.getProperty("cache.ttl.seconds", "60").trim();
        try {
            return Integer.parseInt(raw);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("invalid cache.ttl.seconds '" + raw + "' in " + file, e);
        }
    }

    static String fetchFeed(int port) throws IOException {
        try (Socket s = new Socket()) {
            s.connect(new InetSocketAddress("127.0.6.9", port), 50);
            s.setSoTimeout(50);
            return new BufferedReader(new InputStreamReader(s.getInputStream())).readLine();
        }
    }

    /** The hours before: the same loggers, records stamped from a replayed clock. */
    static void replay(long startMs, long endMs, long seed) throws Exception {
        Random rnd = new Random(seed);
        long oldFailure = endMs - (long) (4.4 * 3600_000);
        boolean failed = false;
        for (long t = startMs; t < endMs; t += 60_000 + rnd.nextInt(240_000)) {
            if (!failed && t > oldFailure) {
                failed = true;
                try (ServerSocket mute = new ServerSocket(0, 1, InetAddress.getByName("127.0.6.9"))) {
                    fetchFeed(mute.getLocalPort());         // accepts, never answers: a real read timeout
                } catch (IOException e) {
                    LogRecord r = new LogRecord(Level.WARNING, "ECB feed refresh failed, keeping rates from the last refresh");
                    r.setInstant(Instant.ofEpochMilli(t)); r.setLoggerName(FEED.getName()); r.setThrown(e);
                    FEED.log(r);
                }
            }
            LogRecord r = rnd.nextInt(6) == 0
                ? new LogRecord(Level.WARNING, "heap usage " + (80 + rnd.nextInt(9)) + "% after full GC (limit 80%)")
                : new LogRecord(Level.INFO, "rates refreshed: " + (140 + rnd.nextInt(20)) + " currency pairs");
            r.setInstant(Instant.ofEpochMilli(t)); r.setLoggerName(LOG.getName());
            LOG.log(r);
        }
    }

    public static void main(String[] args) throws Exception {
        setupLog(args[0]);
        if (args[1].equals("replay")) { replay(Long.parseLong(args[2]), Long.parseLong(args[3]), Long.parseLong(args[4])); return; }
        String conf = args[1];
        LOG.info("RateService 7.4.2 starting (config " + conf + ")");
        Properties p = new Properties();
        try (Reader r = Files.newBufferedReader(Paths.get(conf))) { p.load(r); }
        int ttl;
        try {
            ttl = ttlSeconds(p, conf);
        } catch (IllegalArgumentException e) {
            LOG.log(Level.SEVERE, "startup failed", e);
            throw e;
        }
        HttpServer srv = HttpServer.create(new InetSocketAddress(InetAddress.getByName("127.0.6.2"), 8088), 32);
        srv.createContext("/rates/", ex -> {
            String pair = ex.getRequestURI().getPath().substring(7);
            boolean known = pair.matches("(EUR|GBP|CHF|JPY)(USD|EUR)");
            byte[] body = (known ? "{\"pair\":\"" + pair + "\",\"rate\":1.0842,\"ttl\":" + ttl + "}"
                                 : "{\"error\":\"unknown pair " + pair + "\"}").getBytes(StandardCharsets.UTF_8);
            ex.sendResponseHeaders(known ? 200 : 404, body.length);
            try (OutputStream o = ex.getResponseBody()) { o.write(body); }
        });
        srv.start();
        LOG.info("listening on 127.0.6.2:8088, cache ttl " + ttl + " s");
    }
}
"""

GOOD_CONF = "# rate-service\nfeed.url=https://feeds.example/ecb\ncache.ttl.seconds=30\nhttp.port=8088\n"
BAD_CONF = "# rate-service (config revision r4471)\nfeed.url=https://feeds.example/ecb\ncache.ttl.seconds=30s\nhttp.port=8088\n"


def supervisor(journal: str, java_cp: str, log: str, conf: str, seconds: str, restart_file: str) -> None:
    """A systemd-like unit runner: restarts on failure (3 tries), logs to a journal."""
    jlog = setup(journal, "syslog", "systemd", program="systemd")
    unit = "rate-service.service"
    end = time.time() + float(seconds)
    failures = 0
    proc = None
    while time.time() < end and failures < 4:
        if proc is None:
            jlog.info("Started %s - ACME rate service.", unit)
            proc = subprocess.Popen(["java", "-Xshare:auto", "-XX:TieredStopAtLevel=1", "-cp", java_cp,
                                     "com.acme.rates.RateService", log, f"conf/{Path(conf).name}"],
                                    cwd=Path(conf).parent.parent, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True)
        if Path(restart_file).exists():                   # the deploy agent asks for a restart
            Path(restart_file).unlink()
            jlog.info("Stopping %s - ACME rate service...", unit)
            proc.terminate()
            proc.wait()
            jlog.info("%s: Deactivated successfully.", unit)
            proc = None
            continue
        rc = proc.poll()
        if rc is not None and rc != 143:
            text = proc.stdout.read()
            jrec = logging.getLogger("rate-service")
            if not jrec.handlers:
                setup(journal, "syslog", "rate-service", program="java")
            for line in text.splitlines():
                if line.strip():
                    jrec.error("%s", line)
            failures += 1
            jlog.warning("%s: Main process exited, code=exited, status=%d/FAILURE", unit, rc)
            jlog.warning("%s: Failed with result 'exit-code'.", unit)
            proc = None
            if failures >= 4:
                jlog.error("%s: Start request repeated too quickly.", unit)
                jlog.error("Failed to start %s - ACME rate service.", unit)
                break
            jlog.info("%s: Scheduled restart job, restart counter is at %d.", unit, failures)
            time.sleep(0.5)
        time.sleep(0.05)
    if proc is not None:
        proc.kill()


def pricing_api(log_path: str, seconds: str) -> None:
    log = setup(log_path, "json", "pricing.api", "pricing.rates", program="pricing-api")
    rl = logging.getLogger("pricing.rates")
    end = time.time() + float(seconds)
    last_ok = time.time()
    quote = 31000
    while time.time() < end:
        quote += 1
        if quote % 7 == 0:                      # a metals desk asks for a pair the service never had
            try:
                urllib.request.urlopen(f"http://{RATES[0]}:{RATES[1]}/rates/XAUUSD", timeout=2).read()
            except urllib.error.HTTPError as exc:
                log.warning("quote %d: pair XAUUSD not offered (HTTP %d)", quote, exc.code)
            except OSError:
                pass
        try:
            with urllib.request.urlopen(f"http://{RATES[0]}:{RATES[1]}/rates/EURUSD", timeout=2) as r:
                json.loads(r.read())
            last_ok = time.time()
            log.info("quote %d priced", quote)
        except OSError as exc:
            reason = getattr(exc, "reason", exc)
            rl.error("rate lookup EURUSD failed: %s", reason)
            rl.warning("quote %d priced with stale rates (age %.0f s)", quote, time.time() - last_ok)
        time.sleep(0.2)


def build(out: Path) -> None:
    need_tools("java", "javac")
    with Drill(NAME, SEED) as d:
        now = time.time()
        src = d.write("java/com/acme/rates/RateService.java", JAVA)
        classes = d.path("classes/x").parent
        d.run(["javac", "-d", str(classes), str(src)], timeout=180)
        rlog, journal, api_log = d.path("rate/rates.log"), d.path("rate/journal.log"), d.path("api/pricing-api.log")
        conf = d.write("rate/conf/rates.properties", GOOD_CONF)
        d.run(["java", "-cp", str(classes), "com.acme.rates.RateService", str(rlog), "replay",
               str(int((now - 9 * 3600) * 1000)), str(int((now - 30) * 1000)), str(SEED)], timeout=120)
        setup(api_log, "json", "pricing.api", program="pricing-api").info("pricing-api 1.9.0 started")
        restart = d.path("rate/restart-requested")
        sup = d.role(__file__, "supervisor", journal, classes, rlog, conf, 14, restart, out="supervisor.out")
        d.wait_port(*RATES, timeout=60, proc=sup)
        d.start_capture(RATES)
        api = d.role(__file__, "pricing_api", api_log, 7, out="api.out")
        time.sleep(2.0)
        conf.write_text(BAD_CONF)                                    # config revision r4471 is deployed
        deploy = d.path("rate/deploy-agent.log")
        deploy.write_text(time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()) +
                          " deploy-agent: applied config revision r4471 to rate-service (1 file); restart requested\n")
        restart.touch()
        d.wait(api, 30)
        pcap = d.finish_capture("api-to-rates.pcap")
        d.wait(sup, 60)
        if "NumberFormatException" not in rlog.read_text():
            raise RuntimeError("RateService did not fail on the bad TTL")

        out.mkdir(parents=True, exist_ok=True)
        (out / "rate-host.tar.gz").write_bytes(
            Bundle()
            .add("rate-host/var/log/rate-service/rates.log", rlog)
            .add("rate-host/var/log/journal.txt", journal)
            .add("rate-host/var/log/deploy-agent.log", deploy)
            .add("rate-host/etc/rate-service/rates.properties", conf)
            .tgz_bytes())
        (out / "api-host.zip").write_bytes(
            Bundle()
            .add("logs/pricing-api.log", api_log)
            .add("tcpdump/api-to-rates.pcap", pcap)
            .zip_bytes())
        write_truth(out, NAME, codes=["DUMP.JAVA_EXCEPTION", "LOG.ERROR_TEMPLATE"], artifact="*rate-host*",
                    contains=["30s"],
                    description="Config revision r4471 set cache.ttl.seconds=30s; RateService failed at startup "
                                "with IllegalArgumentException (caused by NumberFormatException for \"30s\"), every "
                                "restart failed the same way, so pricing-api's connections to 127.0.6.2:8088 were "
                                "refused and it priced with stale rates.")


if __name__ == "__main__":
    roles({"supervisor": supervisor, "pricing_api": pricing_api})
