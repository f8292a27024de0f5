"""Known issues from JSON/YAML: the schema, and errors that name the file and the field."""

from __future__ import annotations

import json

import pytest

from backline.errors import FormatError
from backline.knowledge.kb.loader import entry_to_dict, load_pack, load_path, parse_entry, parse_text

GOOD = {"key": "KB-1001", "title": "Orders service refuses TLS 1.3 clients",
        "fix": {"bug": "ORD-12", "fixed_in": "4.2.3", "hotfix": "HF-7"},
        "affects": [{"product": "orders", "versions": ">=4.0, <4.2.3"}],
        "matchers": [{"finding": "NET.TLS.ALERT", "where": {"description": "protocol_version"}},
                     {"signature": "OrderService::reserve", "prefix": True},
                     {"bucket": "NULL_POINTER_READ_c0000005_orders.exe+0x1234"},
                     {"exception": "java.lang.OutOfMemoryError", "message": "heap", "frame": "Cache\\.put"},
                     {"log": {"template": "reserve failed for <*>", "min_count": 3}},
                     {"event": {"provider": "Service Control Manager", "id": 7031, "fields": {"param1": "Orders"}}},
                     {"fact": "dump.os", "eq": "Windows NT"},
                     {"rule": "crash_loop", "params": {"min_dumps": 2}}],
        "when": [{"fact": "jvm.version", "version": ">=11"}]}


def test_every_matcher_kind_round_trips():
    ki = parse_entry(GOOD, source="x.json")
    assert [m.kind for m in ki.matchers] == ["finding", "signature", "signature", "exception", "log", "event",
                                             "fact", "rule"]
    assert parse_entry(entry_to_dict(ki), source="x.json") == ki


@pytest.mark.parametrize("mutate, where, words", [
    (lambda d: d.update(key="KB-x"), "key", "does not match"),
    (lambda d: d["matchers"][0]["where"].update(description={"gte": "high"}), "matchers[0].where.description.gte",
     "not of type 'number'"),
    (lambda d: d["matchers"][0]["where"].update(description={"approx": 1}), "matchers[0].where.description",
     "'approx' was unexpected"),
    (lambda d: d["matchers"][4]["log"].update(min_count=0), "matchers[4].log.min_count", "minimum of 1"),
    (lambda d: d["matchers"][3].update(frame="(unclosed"), "matchers[3].frame", "regular expression"),
    (lambda d: d["matchers"].append({"finding": "X", "signature": "y"}), "matchers[8]", "exactly one of"),
    (lambda d: d["matchers"].append({"colour": "red"}), "matchers[8]", "exactly one of"),
    (lambda d: d["matchers"][5]["event"].pop("id"), "matchers[5].event", "'id' is a required property"),
    (lambda d: d["affects"][0].update(versions=">=4.0,,5"), "affects[0].versions", "empty constraint"),
    (lambda d: d["fix"].update(fixed_in="soon"), "fix.fixed_in", "not a version"),
    (lambda d: d["matchers"][7].update(rule="no_such_rule"), "matchers[7].rule", "no rule"),
    (lambda d: d.update(surprise=1), "", "surprise"),
    (lambda d: d["when"][0].pop("version"), "when[0]", "exactly one of"),
])
def test_a_bad_field_is_named(mutate, where, words):
    raw = json.loads(json.dumps(GOOD))
    mutate(raw)
    with pytest.raises(FormatError) as err:
        parse_entry(raw, source="team/orders.json")
    text = str(err.value)
    assert text.startswith("team/orders.json")
    assert where in text and words in text


def test_files_and_folders(tmp_path):
    (tmp_path / "a.yaml").write_text("entries:\n  - key: KB-1001\n    title: one\n    matchers:\n"
                                     "      - finding: NET.DNS.SERVFAIL\n")
    (tmp_path / "b.json").write_text(json.dumps([{"key": "KB-1002", "title": "two",
                                                  "matchers": [{"log": {"regex": "boom"}}]}]))
    (tmp_path / "notes.txt").write_text("not an entry")
    assert [k.key for k in load_path(tmp_path)] == ["KB-1001", "KB-1002"]
    assert [k.key for k in load_path(tmp_path / "b.json")] == ["KB-1002"]


def test_duplicate_keys_across_files_name_both(tmp_path):
    for name in ("a.yaml", "b.yaml"):
        (tmp_path / name).write_text("key: KB-1001\ntitle: t\nmatchers: [{finding: X.Y}]\n")
    with pytest.raises(FormatError, match=r"KB-1001 is defined twice .*a\.yaml and .*b\.yaml"):
        load_path(tmp_path)


def test_broken_yaml_and_json_say_where():
    with pytest.raises(FormatError, match=r"k.yaml line:2: not YAML"):
        parse_text("key: KB-1\ntitle: a: b: c\n", "k.yaml")
    with pytest.raises(FormatError, match=r"k.json line:1: not JSON"):
        parse_text("{", "k.json")
    with pytest.raises(FormatError, match=r"missing.yaml: no such file"):
        load_path(__import__("pathlib").Path("missing.yaml"))


def test_the_pack_is_documented_and_keyed_in_its_range():
    pack = load_pack()
    assert len(pack) >= 40
    for ki in pack:
        assert 1 <= int(ki.key[3:]) < 1000, ki.key
        assert ki.symptoms and ki.root_cause and ki.workaround, ki.key
        assert ki.status.value == "published"
        assert ki.source.startswith("pack:")


def test_the_docs_list_every_pack_entry_and_rule():
    from backline.knowledge.kb.rules import BUILTIN_RULES
    from backline.testing import project_root

    doc = (project_root() / "docs/knowledge.md").read_text(encoding="utf-8")
    missing = [ki.key for ki in load_pack() if f"| {ki.key} | {ki.title} |" not in doc]
    assert not missing, f"docs/knowledge.md does not list {missing}"
    assert all(f"`{r.name}`" in doc for r in BUILTIN_RULES)
