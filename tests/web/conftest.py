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
