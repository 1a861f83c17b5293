"""The round manifest: stage records, the resume rule (done + outputs exist), corrupt or foreign manifests."""
import json

import pytest

from committee import manifest as mf


def _open(tmp_path, **header):
    root = tmp_path / "run"
    return mf.Manifest.open(root / "round_1", root, 1, {"config": {"k": 2}, "committee": ["r0-sft"], **header})


def test_a_new_manifest_records_its_header_and_format(tmp_path):
    m = _open(tmp_path, afm_align="9.9")
    data = json.loads(m.path.read_text())
    assert data["format"] == mf.MANIFEST_FORMAT and data["round"] == 1
    assert data["committee"] == ["r0-sft"] and data["afm_align"] == "9.9" and data["stages"] == {}
    # opening again keeps what is on disk (the header of a resumed round is not rewritten)
    again = mf.Manifest.open(m.path.parent, m.root, 1, {"config": {"k": 99}, "committee": []})
    assert again.data["config"] == {"k": 2}


def test_a_stage_is_done_only_when_recorded_done_and_its_outputs_exist(tmp_path):
    m = _open(tmp_path)
    out = m.root / "round_1" / "responses"
    m.start("responses", seed=7)
    assert m.stage("responses")["status"] == "running" and not m.is_done("responses")
    out.mkdir(parents=True)
    record = m.finish("responses", {"responses": out}, seconds=1.234, rss_before=0.0, rows=5)
    assert record["status"] == "done" and record["rows"] == 5 and record["seconds"] == 1.23
    assert record["outputs"] == {"responses": "round_1/responses"}  # relative to the run directory
    assert record["peak_rss_mb"] > 0 and record["rss_growth_mb"] == record["peak_rss_mb"]
    assert m.is_done("responses") and m.output("responses", "responses") == out
    on_disk = mf.read(m.path)
    assert on_disk["stages"]["responses"]["seed"] == 7
    out.rmdir()  # outputs gone: the stage must run again
    assert not m.is_done("responses")
    m.start("responses", seed=7)
    assert m.stage("responses")["attempts"] == 2
    with pytest.raises(ValueError, match="no output 'nope'"):
        m.output("responses", "nope")


def test_waiting_and_top_level_fields_are_saved(tmp_path):
    m = _open(tmp_path)
    m.start("preferences", seed=1)
    m.wait("preferences", "3 of 10 pairs labelled")
    m.set(rm_accuracy={"accuracy": 0.75})
    data = mf.read(m.path)
    assert data["stages"]["preferences"] == {**data["stages"]["preferences"], "status": "waiting",
                                              "message": "3 of 10 pairs labelled"}
    assert data["rm_accuracy"] == {"accuracy": 0.75}
    assert m.all_done([]) and not m.all_done(["preferences"])


@pytest.mark.parametrize("text, match", [
    ("{not json", "corrupt round manifest"),
    ("[1, 2]", "corrupt round manifest"),
    (json.dumps({"format": 2, "round": 1, "config": {}, "stages": {}}), "format 2"),
    (json.dumps({"format": 1, "round": 1, "config": {}}), "field 'stages'"),
    (json.dumps({"format": 1, "round": 1, "config": {}, "stages": {"rm": {"status": "half"}}}), "stage 'rm'"),
])
def test_a_corrupt_or_foreign_manifest_is_one_line(tmp_path, text, match):
    path = tmp_path / "manifest.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=match) as err:
        mf.read(path)
    assert "\n" not in str(err.value) and str(path) in str(err.value)


def test_a_missing_manifest_reads_as_none(tmp_path):
    assert mf.read(tmp_path / "manifest.json") is None
