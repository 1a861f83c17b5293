"""The Admin tab's disagreement queue, gold items and export (issue 20), and who may see them."""
import json
import zipfile

import pytest

from afm_align.label_store import LabelStore
from afm_align.rundir import RunDir
from afm_align.schema import GRADE_DIMENSIONS
from afm_align.store import MANIFEST_FILE
from ui.admin_tab import export_zip, review_tables
from ui.agreement import disagreements, gold_items

G1 = dict.fromkeys(GRADE_DIMENSIONS, 1)


def _label(store, user, better, level, why=""):
    """The user's next pair, labelled so that `better` (pair orientation) wins."""
    a = store.next_pair(user)
    store.submit(user, a.id, "A" if (better == "a") != a.swapped else "B", level, G1, G1, why)
    return a


@pytest.fixture
def store(tmp_path):
    s = LabelStore(tmp_path / "runs" / "adm" / "labels.sqlite", seed=2)
    for name in ("ann1", "ann2"):
        s.add_user(name, f"{name}-password")
    s.add_user("boss", "boss-password", admin=True)
    s.add_pairs([{"pair_id": f"p{i}", "prompt": "q", "response_a": f"a{i}", "response_b": f"b{i}",
                  "gold": "a" if i == 2 else None} for i in range(3)], round=1, k=2)
    # p0: ann1 a (3), ann2 b (1)       -> disagree on the choice
    # p1: ann1 a (4), ann2 a (1)       -> same side, levels 3 apart
    # p2 (gold a): ann1 a, ann2 b      -> both a disagreement and a gold miss for ann2
    for better1, level1, better2, level2 in (("a", 2, "b", 0), ("a", 3, "a", 0), ("a", 1, "b", 1)):
        _label(s, "ann1", better1, level1, "clear" if level1 == 2 else "")
        _label(s, "ann2", better2, level2, "B reads better")
    return s


def test_disagreements_most_contested_first(store):
    rows = disagreements(store.labels(), store.pairs())
    assert [(r["pair_id"], r["disagree_on"]) for r in rows] == [("p0", "choice"), ("p2", "choice"), ("p1", "level")]
    p0 = rows[0]
    assert p0["response_a"] == "ann1 (3)" and p0["response_b"] == "ann2 (1)"     # levels as keys 1-4
    assert p0["justifications"] == "ann1: clear | ann2: B reads better"
    assert len(p0["items"].split(", ")) == 2


def test_gold_items_show_who_got_them_right(store):
    [row] = gold_items(store.labels(), store.pairs())
    assert (row["pair_id"], row["gold"], row["labels"], row["right"], row["wrong"]) == ("p2", "response_a", 2,
                                                                                      "ann1", "ann2")


def test_review_and_export_are_for_admins_only(store, tmp_path):
    with pytest.raises(PermissionError):
        review_tables(store, "ann1")
    with pytest.raises(PermissionError):
        export_zip(store, "ann1", RunDir(store.path.parent), folder=tmp_path / "x")
    disagree, gold = review_tables(store, "boss")
    assert [r[0] for r in disagree] == ["p0", "p2", "p1"] and [r[0] for r in gold] == ["p2"]


def test_export_from_the_app_is_a_zip_of_the_export_folder(store, tmp_path):
    store.add_pairs([{"pair_id": "p9", "prompt": "q", "response_a": "x", "response_b": "y"}], round=1, k=1)
    store.skip("ann1", store.next_pair("ann1").id, "broken pair")
    path = export_zip(store, "boss", RunDir(store.path.parent), folder=tmp_path / "exports")
    again = export_zip(store, "boss", RunDir(store.path.parent), soft=True, folder=tmp_path / "exports")
    assert not path.exists() and len(list((tmp_path / "exports").glob("*.zip"))) == 1   # one at a time
    with zipfile.ZipFile(again) as zf:
        names = sorted(n.split("/", 1)[1] for n in zf.namelist() if not n.endswith("/"))
        assert names == sorted(["annotations.jsonl", MANIFEST_FILE, "rows.jsonl"])
        base = again.stem
        rows = [json.loads(line) for line in zf.read(f"{base}/rows.jsonl").decode().splitlines()]
        notes = zf.read(f"{base}/annotations.jsonl").decode()
    assert len(rows) == 3 and all("target_prob" in r and "justifications" in r for r in rows)
    assert '"broken pair"' in notes and '"B reads better"' in notes
