"""DESIGN's layer order, checked on every import of every module (lazy imports inside functions too):

    afm_align (core) < synth < reward_model < alignment < committee < ui

A module may import only from its own layer or layers to its left; `afm_align/cli.py` sits on top (it
dispatches to every layer and nothing imports it)."""
import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ["afm_align", "synth", "reward_model", "alignment", "committee", "ui"]
ON_TOP = {"afm_align/cli.py"}


def forbidden_imports(path: Path, layer: str) -> list[str]:
    """The imports in `path` of a package right of `layer` (with their line numbers)."""
    rank = LAYERS.index(layer)
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module] if isinstance(node, ast.ImportFrom) and node.module and node.level == 0 else []
        for name in names:
            top = name.split(".")[0]
            if top in LAYERS and LAYERS.index(top) > rank:
                bad.append(f"{path.relative_to(REPO)}:{node.lineno} imports {name}")
    return bad


def modules():
    for layer in LAYERS:
        for path in sorted((REPO / layer).rglob("*.py")):
            if str(path.relative_to(REPO)) not in ON_TOP:
                yield layer, path


def test_every_module_imports_only_from_its_layer_or_those_left_of_it():
    bad = [b for layer, path in modules() for b in forbidden_imports(path, layer)]
    assert not bad, "imports against DESIGN's layer order:\n" + "\n".join(bad)


def test_the_check_catches_a_lazy_forbidden_import(tmp_path):
    fake = REPO / "afm_align" / "_layer_probe_tmp.py"
    fake.write_text("def f():\n    from committee.rounds import iterate\n    return iterate\n")
    try:
        assert forbidden_imports(fake, "afm_align") == ["afm_align/_layer_probe_tmp.py:2 imports committee.rounds"]
    finally:
        fake.unlink()


@pytest.mark.parametrize("layer", LAYERS)
def test_every_layer_has_modules(layer):
    assert any(True for lay, _ in modules() if lay == layer)
