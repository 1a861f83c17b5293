"""The recipe table is the one list of policy recipes: everything else is derived from it and checked here."""
import dataclasses
import inspect

import pytest

from afm_align.config import CONFIG_ROOT
from afm_align.errors import UserError
from alignment import recipes


@pytest.mark.parametrize("name", list(recipes.RECIPES))
def test_every_row_points_at_a_config_a_main_and_its_presets(name):
    row = recipes.RECIPES[name]
    cls = recipes.config_class(name)
    assert dataclasses.is_dataclass(cls)
    assert list(inspect.signature(recipes.main_of(name)).parameters)[0] == "cfg"
    for preset in ("tiny", "small"):
        assert (CONFIG_ROOT / preset / f"{row.preset_name}.yaml").is_file(), (preset, name)
        recipes.load(name, preset=preset)  # every preset YAML fits its config (unknown keys would raise)
    assert row.round_data in (None, *recipes.ROUND_DATA)
    if row.round_reward_model:
        assert "reward_model" in {f.name for f in dataclasses.fields(cls)}


def test_the_cli_and_the_round_derive_their_lists_from_the_table():
    from afm_align.cli import build_parser
    from committee.round_config import IterateConfig, parse_members

    train = build_parser()._subparsers._group_actions[0].choices["train"]
    choices = next(a.choices for a in train._actions if a.dest == "recipe")
    assert list(choices) == list(recipes.RECIPES)
    assert IterateConfig().members == list(recipes.DEFAULT_MEMBERS)
    assert parse_members(",".join(recipes.ROUND_CANDIDATES)) == list(recipes.ROUND_CANDIDATES)


def test_round_overrides_are_checked_against_the_table():
    from committee.round_config import load

    assert load("tiny", overrides=["recipes.rloo=[steps=2]"]).recipes["rloo"] == ["steps=2"]
    with pytest.raises(UserError, match="recipes.nope: not a recipe of a round"):
        load("tiny", overrides=["recipes.nope=[steps=2]"])
    with pytest.raises(UserError, match="must be a list of key=value"):
        load("tiny", overrides=["recipes.dpo=[steps]"])


def test_an_unknown_recipe_is_a_user_error():
    with pytest.raises(UserError, match="unknown recipe 'ppo'; recipes are: sft, rs"):
        recipes.recipe("ppo")
