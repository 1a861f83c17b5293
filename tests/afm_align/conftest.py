"""Fixtures the label-store tests share."""
import pytest

from afm_align.label_store import LabelStore


@pytest.fixture
def store(tmp_path):
    """A label store with annotators ann1, ann2 and ann3 (passwords `<name>-password`)."""
    s = LabelStore(tmp_path / "labels.sqlite", seed=0)
    for name in ("ann1", "ann2", "ann3"):
        s.add_user(name, f"{name}-password")
    return s
