"""In the browser: a file dropped on the case page uploads with a progress bar and shows up with its
analysis without a reload; the queue refreshes itself when a case arrives."""

from __future__ import annotations

from backline.cases.model import CaseSeverity
from backline.cases.service import NewCase

from .browser import log_in
from .pages_helpers import add_users
from .test_pages_security import FULL


def test_drop_a_file_and_watch_it_upload_and_analyse(browser, site, web_hub):
    users = add_users(web_hub, ("erin", "engineer", None))
    case = web_hub.cases.create(users["erin"], NewCase("Drop test", "orders", "1", "acme", CaseSeverity.S3, FULL))
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, site, "erin")
    page.goto(f"{site}/cases/{case.key}")
    page.evaluate("() => { window.__sameDocument = true; }")
    page.evaluate("""() => {
        const dt = new DataTransfer();
        const text = '2024-05-01 10:00:00,000 ERROR [main] db - connection refused\\n'.repeat(2000);
        dt.items.add(new File([text], 'dropped.log', {type: 'text/plain'}));
        const zone = document.querySelector('.dropzone');
        zone.dispatchEvent(new DragEvent('dragover', {dataTransfer: dt, bubbles: true, cancelable: true}));
        zone.dispatchEvent(new DragEvent('drop', {dataTransfer: dt, bubbles: true, cancelable: true}));
    }""")
    page.locator("#analysis table.evidence").get_by_text("dropped.log").wait_for(timeout=30_000)
    page.locator("#analysis").get_by_text("Analysis complete").wait_for(timeout=60_000)
    assert page.evaluate("() => window.__sameDocument === true")
    assert [e.filename for e in web_hub.evidence.list(users["erin"], case.key)] == ["dropped.log"]
    assert "LOG." in page.locator("#findings").evaluate("h => h.parentElement.innerText")
    ctx.close()


def test_progress_bar_follows_the_upload(browser, site, web_hub):
    users = add_users(web_hub, ("erin", "engineer", None))
    case = web_hub.cases.create(users["erin"], NewCase("Progress", "orders", "1", "acme", CaseSeverity.S3, FULL))
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, site, "erin")
    page.goto(f"{site}/cases/{case.key}")
    # record every value the bar takes while a 3 MB file goes up
    page.evaluate("""() => {
        window.__progress = [];
        const bar = document.querySelector('#analysis progress');
        new MutationObserver(() => window.__progress.push([bar.hidden, bar.value, bar.max]))
            .observe(bar, {attributes: true});
        const orig = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value');
        Object.defineProperty(bar, 'value', {set(v) { orig.set.call(this, v); window.__progress.push([this.hidden, v, this.max]); },
                                             get() { return orig.get.call(this); }});
    }""")
    page.set_input_files("#ev-file", files=[{"name": "big.log", "mimeType": "text/plain",
                                             "buffer": b"2024-05-01 10:00:00 INFO fine\n" * 100_000}])
    page.click("#analysis button:has-text('Upload')")
    page.locator("#analysis table.evidence").get_by_text("big.log").wait_for(timeout=30_000)
    steps = page.evaluate("() => window.__progress")
    values = [v for hidden, v, _max in steps if not hidden]
    assert values and values[-1] == steps[-1][2] and steps[-1][2] >= 3_000_000     # it reached the end
    ctx.close()


def test_the_queue_refreshes_itself(browser, site, web_hub, monkeypatch):
    from backline.web.pages import queue
    monkeypatch.setattr(queue, "REFRESH_SECONDS", 1)
    users = add_users(web_hub, ("erin", "engineer", None))
    ctx = browser.new_context()
    page = ctx.new_page()
    log_in(page, site, "erin")
    page.evaluate("() => { window.__sameDocument = true; }")
    assert page.locator("table.queue").count() == 0
    new = web_hub.cases.create(users["erin"], NewCase("Arrived meanwhile", "orders", "1", "acme", CaseSeverity.S1,
                                                      FULL))
    page.locator("table.queue").get_by_text(new.key).wait_for(timeout=15_000)
    assert page.evaluate("() => window.__sameDocument === true")
    ctx.close()
