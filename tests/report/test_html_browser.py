"""The HTML report in a real browser (Debian's Chromium, headless): our script
runs under the page's Content-Security-Policy, nothing from the evidence does."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from backline.report import build_report, write_reports

from .samples import fixed_clock

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium (apt-get install chromium)")


def _dom(path) -> str:
    out = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom",
                          path.as_uri()], capture_output=True, text=True, timeout=90)
    assert out.returncode == 0, out.stderr[-2000:]
    return out.stdout


def test_script_runs_and_hostile_content_stays_text(hostile, tmp_path):
    page = write_reports(build_report(hostile, now=fixed_clock), tmp_path, ["html"])["html"]
    dom = _dom(page)
    assert re.search(r'<html[^>]*class="js"', dom)          # our pinned script ran
    assert "<img" not in dom                                 # the evidence's tag stayed text
    assert dom.count("<script") == 1


def test_a_script_not_pinned_by_the_policy_is_blocked(rich, tmp_path):
    page = write_reports(build_report(rich, now=fixed_clock), tmp_path, ["html"])["html"]
    tampered = tmp_path / "tampered.html"
    tampered.write_text(re.sub(r"sha256-[A-Za-z0-9+/=]+", "sha256-AAAA", page.read_text()))
    assert not re.search(r'<html[^>]*class="js"', _dom(tampered))
