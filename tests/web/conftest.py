from backline.storage.testdb import engine, pg_schema, sqlite_template  # noqa: F401

import pytest
from fastapi.testclient import TestClient

from backline.cases.hub import Hub
from backline.web.app import create_app


@pytest.fixture
def hub(engine, tmp_path):
    return Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=256 * 1024)


@pytest.fixture
def client(hub):
    with TestClient(create_app(hub, max_json_body=64 * 1024), raise_server_exceptions=True) as c:
        yield c


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium through Playwright (one per pytest worker)."""
    from playwright.sync_api import sync_playwright

    from .browser import CHROMIUM, CHROMIUM_ARGS
    pw = sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001 - say what is missing
        pw.stop()
        pytest.fail(f"cannot start {CHROMIUM} (apt-get install chromium): {exc}")
    yield b
    b.close()
    pw.stop()


@pytest.fixture(scope="session")
def axe():
    from .browser import axe_source
    return axe_source()


@pytest.fixture
def web_hub(engine, tmp_path):
    """A hub for a live server: upload limit large enough for the example bundle."""
    return Hub.build(engine, blob_root=tmp_path / "blobs", max_upload=64 * 1024 * 1024)


@pytest.fixture
def site(web_hub):
    from .browser import live_server
    with live_server(web_hub) as base:
        yield base
