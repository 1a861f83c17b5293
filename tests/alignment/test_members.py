"""The member directory contract: atomic writes, meta.json / config / metrics, load_member, shared checks."""
import dataclasses

import pytest
import torch
import yaml

from alignment import members


@dataclasses.dataclass
class Knobs:
    from_checkpoint: str = "base"
    data: str = "data"
    out: str = "out"
    lora_rank: int = 0


def test_write_and_load_member_round_trip(tiny_lm, tiny_tokenizer, tmp_path):
    out = tmp_path / "members" / "m1"
    history = [{"loss": 2.0, "step": 1}, {"loss": 1.5, "step": 2}, {"train_loss": 1.7, "step": 2}]
    with members.member_staging(out) as stage:
        assert stage.parent == out.parent and stage != out
        members.write_member(stage, tiny_lm, tiny_tokenizer, meta={"member": "m1", "recipe": "sft"}, cfg=Knobs(),
                             log_history=history)
        assert not out.exists()  # nothing visible before the block ends
    assert members.is_member(out)
    model, tokenizer, meta = members.load_member(out)
    assert meta["member"] == "m1" and meta["format"] == members.MEMBER_FORMAT and "created" in meta
    assert tokenizer.chat_template == tiny_tokenizer.chat_template
    for (name, p), q in zip(model.named_parameters(), tiny_lm.parameters()):
        assert torch.equal(p, q), name
    assert yaml.safe_load((out / members.CONFIG_FILE).read_text())["data"] == "data"
    assert [r["loss"] for r in members.read_metrics(out) if "loss" in r] == [2.0, 1.5]
    assert members.member_name(out) == "m1"
    assert members.train_summary(history) == {"steps": 2, "first_loss": 2.0, "last_loss": 1.5}


def test_a_crash_leaves_no_half_member(tiny_lm, tiny_tokenizer, tmp_path):
    out = tmp_path / "members" / "m"
    with members.member_staging(out) as stage:
        members.write_member(stage, tiny_lm, tiny_tokenizer, meta={"member": "old"}, cfg=Knobs())
    with pytest.raises(RuntimeError, match="boom"):
        with members.member_staging(out) as stage:
            (stage / "config.json").write_text("{}")
            raise RuntimeError("boom")
    assert members.read_meta(out)["member"] == "old"  # the old member is untouched
    assert sorted(p.name for p in out.parent.iterdir()) == ["m"]  # no staging folder left behind
    with pytest.raises(RuntimeError, match="without writing meta.json"):
        with members.member_staging(tmp_path / "members" / "n"):
            pass
    assert not (tmp_path / "members" / "n").exists()


def test_replacing_a_member_drops_the_work_folder(tiny_lm, tiny_tokenizer, tmp_path):
    out = tmp_path / "m"
    for name in ("first", "second"):
        with members.member_staging(out) as stage:
            (stage / members.WORK_DIR / "checkpoint-1").mkdir(parents=True)
            members.write_member(stage, tiny_lm, tiny_tokenizer, meta={"member": name}, cfg=Knobs())
    assert members.read_meta(out)["member"] == "second" and not (out / members.WORK_DIR).exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_read_meta_errors_and_plain_checkpoint_names(tmp_path):
    with pytest.raises(ValueError, match="not a member directory"):
        members.read_meta(tmp_path)
    (tmp_path / members.META_FILE).write_text("{oops")
    with pytest.raises(ValueError, match="corrupt member metadata"):
        members.read_meta(tmp_path)
    assert members.member_name(tmp_path / "base") == "base" and not members.is_member(tmp_path / "base")


def test_shared_checks(tmp_path):
    with pytest.raises(ValueError, match="'out' must be set"):
        members.check_common(Knobs(out=""))
    with pytest.raises(ValueError, match="lora_rank must be one of 0, 8, 16, 32"):
        members.check_common(Knobs(lora_rank=4))
    with pytest.raises(ValueError, match=r"from_checkpoint .*: no such checkpoint directory\.$"):
        members.load_start(tmp_path / "missing")


def test_trainer_args_turn_off_bf16_checkpointing_and_trackers(tmp_path):
    from trl import SFTConfig

    from afm_align.member_io import trainer_args

    args = trainer_args(SFTConfig, tmp_path, stage="test", learning_rate=1e-3)
    assert args.bf16 is False and args.gradient_checkpointing is False and args.dataloader_num_workers == 0
    assert args.report_to in ([], ["none"], "none") and args.learning_rate == 1e-3 and args.save_strategy == "no"
