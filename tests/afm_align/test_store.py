"""Dataset store: round trip, stable hashes, manifests, atomic writes, HF loading, clear errors."""
import json

import pytest

from afm_align.schema import RowError
from afm_align.store import content_hash, load_hf, read_manifest, read_rows, write_dataset


def prompt_rows(n=5):
    return [{"id": f"m{i}", "prompt": [{"role": "user", "content": f"What is {i} + 1?"}], "domain": "math",
             "verifier": json.dumps({"answer": i + 1}), "source": "synth/math", "split": "train"}
            for i in range(n)]


def test_round_trip_and_manifest(tmp_path):
    rows = prompt_rows()
    m = write_dataset(rows, "prompt", tmp_path / "ds", producer="test", config={"n": 5}, parents=["abc"])
    assert read_rows(tmp_path / "ds") == rows
    again = read_manifest(tmp_path / "ds")
    assert (again.kind, again.rows, again.producer, again.parents) == ("prompt", 5, "test", ["abc"])
    assert again.content_hash == m.content_hash == content_hash(rows)
    assert again.config == {"n": 5}


def test_hash_is_stable_and_content_sensitive(tmp_path):
    a = write_dataset(prompt_rows(), "prompt", tmp_path / "a", producer="t")
    b = write_dataset(prompt_rows(), "prompt", tmp_path / "b", producer="other")
    assert a.content_hash == b.content_hash
    rows = prompt_rows()
    rows[0]["prompt"][0]["content"] = "changed"
    assert content_hash(rows) != a.content_hash
    # key order inside a row does not change the hash
    assert content_hash([dict(reversed(list(r.items()))) for r in prompt_rows()]) == a.content_hash


def test_invalid_rows_write_nothing(tmp_path):
    rows = prompt_rows()
    del rows[3]["domain"]
    with pytest.raises(RowError, match="line 4: missing field 'domain'"):
        write_dataset(rows, "prompt", tmp_path / "ds", producer="t")
    assert not (tmp_path / "ds").exists()
    assert list(tmp_path.iterdir()) == []


def test_rewrite_replaces_whole_folder(tmp_path):
    write_dataset(prompt_rows(5), "prompt", tmp_path / "ds", producer="t")
    write_dataset(prompt_rows(3), "prompt", tmp_path / "ds", producer="t")
    assert read_manifest(tmp_path / "ds").rows == 3
    assert [p.name for p in tmp_path.iterdir()] == ["ds"]


def test_malformed_line_on_disk_names_file_and_line(tmp_path):
    write_dataset(prompt_rows(), "prompt", tmp_path / "ds", producer="t")
    file = tmp_path / "ds" / "rows.jsonl"
    lines = file.read_text().splitlines()
    lines[2] = lines[2].replace('"split":"train"', '"split":"heldout"')  # not a split of the protocol
    file.write_text("\n".join(lines) + "\n")
    with pytest.raises(RowError, match=r"rows.jsonl line 3: field 'split'"):
        read_rows(tmp_path / "ds")


def test_loads_with_datasets(tmp_path):
    write_dataset(prompt_rows(), "prompt", tmp_path / "ds", producer="t")
    ds = load_hf(tmp_path / "ds")
    assert len(ds) == 5 and ds[0]["prompt"][0]["role"] == "user"


def test_missing_or_corrupt_manifest(tmp_path):
    with pytest.raises(ValueError, match="no such dataset"):
        read_rows(tmp_path / "nope")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="corrupt manifest"):
        read_manifest(tmp_path / "bad")


def test_a_dataset_folder_loads_with_load_dataset_as_the_readme_says(tmp_path):
    """Issue 20 item 6: `load_dataset(folder)` and `load_dataset("json", data_dir=folder)` raised a CastError
    because the manifest sat beside rows.jsonl; it is hidden now, and old folders are still read."""
    from datasets import load_dataset

    from afm_align.cli import main as cli_main
    from afm_align.store import LEGACY_MANIFEST, MANIFEST_FILE, read_manifest

    out = tmp_path / "math"
    assert cli_main(["synth", "math", "--n", "6", "--out", str(out)]) == 0
    assert (out / MANIFEST_FILE).is_file() and not (out / LEGACY_MANIFEST).exists()
    cache = str(tmp_path / "hf-cache")
    for ds in (load_dataset(str(out), split="train", cache_dir=cache),
               load_dataset("json", data_dir=str(out), split="train", cache_dir=cache)):
        assert ds.num_rows == 6 and "prompt" in ds.column_names and "kind" not in ds.column_names
    (out / MANIFEST_FILE).rename(out / LEGACY_MANIFEST)  # a folder written before the manifest was hidden
    assert read_manifest(out).rows == 6 and read_rows(out, "prompt")
