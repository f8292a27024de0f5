"""The embedding model from the two pinned PyPI packages, run by ONNX Runtime."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from backline.errors import SearchError
from backline.knowledge.similar.embed import DIM, Embedder, locate_model, shared_embedder


@pytest.fixture(scope="module")
def emb() -> Embedder:
    return shared_embedder()


def test_unit_vectors_and_meaning(emb):
    v = emb.embed(["The gateway ran out of memory and crashed",
                   "java.lang.OutOfMemoryError: Java heap space in the gateway process",
                   "How do I change the colour of the login page?"])
    assert v.shape == (3, DIM) and v.dtype == np.float32
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.2


def test_batching_and_padding_do_not_change_a_vector(emb):
    texts = ["short", "a much longer text about TLS handshakes failing with protocol_version alerts " * 3, ""]
    together = emb.embed(texts)
    alone = np.stack([emb.embed_one(t) for t in texts])
    assert np.allclose(together, alone, atol=2e-3)


def test_a_damaged_model_file_is_refused(tmp_path, monkeypatch):
    files = locate_model()
    bad = tmp_path / "model.onnx"
    shutil.copy(files.onnx, bad)
    with bad.open("r+b") as fh:
        fh.seek(1000)
        fh.write(b"\x00\x01\x02")
    monkeypatch.setenv("BACKLINE_EMBED_MODEL", str(bad))
    with pytest.raises(SearchError) as err:
        Embedder()
    assert str(bad) in str(err.value) and "sha256" in str(err.value)


def test_a_missing_tokenizer_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setenv("BACKLINE_EMBED_TOKENIZER", str(tmp_path / "nope.json"))
    with pytest.raises(SearchError, match="requirements-models.txt"):
        locate_model()


def test_texts_are_cut_at_max_tokens_and_the_stored_name_says_so(emb):
    from backline.knowledge.similar.embed import MAX_TOKENS, MODEL_NAME
    # the full length keeps the name vectors were always stored under; any other length is its own name
    assert MODEL_NAME == "all-MiniLM-L6-v2-int8" if MAX_TOKENS == 256 else MODEL_NAME.endswith(f"/{MAX_TOKENS}")
    words = [f"word{i}" for i in range(400)]
    pieces = len(emb.tokenizer.encode(" ".join(words)).ids)
    assert pieces == MAX_TOKENS
    long, longer = emb.embed([" ".join(words), " ".join(words + ["tls", "handshake", "failure"] * 50)])
    assert np.allclose(long, longer, atol=1e-6)          # what is past the cut does not count
    short, shorter = emb.embed(["gateway heap exhausted after the upgrade", "gateway heap exhausted"])
    assert not np.allclose(short, shorter, atol=1e-3)
