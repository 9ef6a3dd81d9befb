"""Notes and tags on runs: RUN/notes.json written atomically, read totally; edited on the Runs page, filtered on."""
from __future__ import annotations

import json

import pytest
from test_studio_app import app, assert_ok, cache_dir, make_run, runs  # noqa: F401 - the runs-root fixtures

from core.run_notes import FILE, MAX_BYTES, matches, parse_tags, read_notes, write_notes


def test_write_then_read_round_trips_and_cleans(tmp_path):
    out = write_notes(tmp_path, "first line\nsecond", "baseline, hinge  baseline")
    assert out == {"notes": "first line\nsecond", "tags": ["baseline", "hinge"]}
    assert read_notes(tmp_path) == out
    assert not list(tmp_path.glob("*.tmp"))
    assert parse_tags("a," * 50) == ["a"] and len(parse_tags(" ".join(f"t{i}" for i in range(50)))) == 20


@pytest.mark.parametrize("content", [
    "{not json", "[1, 2]", '{"notes": 5, "tags": "x"}', '{"tags": [1, null, {"a": 1}]}',
    "[" * 100000 + "]" * 100000, '{"notes": "' + "x" * (MAX_BYTES + 10) + '"}', "\xff\xfe",
])
def test_a_bad_notes_file_reads_as_empty(tmp_path, content):
    (tmp_path / FILE).write_bytes(content.encode("utf-8", "surrogateescape") if content != "\xff\xfe"
                                  else b"\xff\xfe\x00")
    assert read_notes(tmp_path) == {"notes": "", "tags": []}


def test_a_linked_or_missing_notes_file_reads_as_empty(tmp_path):
    assert read_notes(tmp_path / "nowhere") == {"notes": "", "tags": []}
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"notes": "secret", "tags": []}))
    (tmp_path / FILE).symlink_to(other)
    assert read_notes(tmp_path)["notes"] == ""


def test_matches_notes_and_tags():
    d = {"notes": "Tried a Lower LR", "tags": ["hinge"]}
    assert matches(d, "lower lr") and matches(d, "hin") and not matches(d, "wgan") and not matches(d, " ")


def _runs_page():
    return app("pages/runs.py")


def test_runs_page_saves_notes_and_filters_on_them(runs):  # noqa: F811
    a, b = make_run(runs, "00001-alpha"), make_run(runs, "00002-beta")
    (b / FILE).write_text("{broken")  # a broken notes file: the card still renders, as 'Add notes'
    at = _runs_page()
    assert_ok(at)
    at.text_input(key="tags_00001-alpha").input("baseline keep")
    at.text_area(key="notes_00001-alpha").input("the good one")
    at.button(key="savenotes_00001-alpha").click().run()
    assert_ok(at)
    assert read_notes(a) == {"notes": "the good one", "tags": ["baseline", "keep"]}
    assert any("baseline" in m.value for m in at.markdown)
    at.text_input(key="runs_filter").input("keep").run()
    assert_ok(at)
    assert any("1 shown" in c.value for c in at.caption)
    assert at.button(key="open_00001-alpha") and not [x for x in at.button if x.key == "open_00002-beta"]


def test_runs_page_renders_with_an_empty_runs_folder(runs):  # noqa: F811
    at = _runs_page()
    assert_ok(at)
