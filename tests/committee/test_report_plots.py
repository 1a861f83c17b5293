"""The report's figures: zero bars stay visible, the reward-KL path is smoothed and its KL estimator named,
and each member's training curves are drawn from its metrics.jsonl (summary records left out)."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from afm_align.rundir import RunDir  # noqa: E402
from afm_align.tracking import training_series  # noqa: E402
from committee.report_plots import KL_WINDOW, draw_accuracy, draw_reward_kl, trailing_mean  # noqa: E402
from committee.training_curves import member_curves, write_training_plots  # noqa: E402


def test_trailing_mean_by_hand():
    assert trailing_mean([1.0, 3.0, -1.0, 5.0], 2) == [1.0, 2.0, 1.0, 2.0]
    assert trailing_mean([4.0, 0.0, 2.0], 5) == [4.0, 2.0, 2.0]
    assert trailing_mean([], 3) == []


def test_zero_and_missing_bars_are_marked_and_intervals_drawn():
    reps = {0: {"member": "r0-sft", "dev": {"math": 0.0, "code": 0.5, "mean": 0.25}, "dev_ci95": [0.2, 0.3]},
            1: {"member": "r1-dpo", "dev": {"math": 0.4, "mean": 0.4}, "dev_ci95": [0.3, 0.5]}}
    stats = {"r0-sft": {"math": {"accuracy": 0.0, "n": 200, "ci95": [0.0, 0.0188]},
                        "code": {"accuracy": 0.5, "n": 10, "ci95": [0.24, 0.76]}}}
    fig = draw_accuracy(reps, stats, plt)
    ax = fig.axes[0]
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("0") == 1  # r0-sft's math: a zero, written
    assert texts.count("n/a") == 1  # r1-dpo has no code score: not drawn as a zero
    stubs = [line for line in ax.lines if line.get_gid() == "small-bar-stub"]
    assert len(stubs) == 1 and list(stubs[0].get_ydata()) == [0.0]
    zero_label = next(t for t in ax.texts if t.get_text() == "0")
    assert zero_label.get_position()[1] > 0.0188  # written above the zero bar's interval, not hidden in it
    caps = [c for c in ax.containers if type(c).__name__ == "ErrorbarContainer"]
    assert len(caps) == 2  # one set of 95% error bars per round
    plt.close(fig)


def test_reward_kl_path_is_a_trailing_mean_and_names_its_estimator():
    kl = [0.0, -0.002, 0.003, -0.001, 0.004, 0.001, 0.002]
    reward = [0.1, 0.4, 0.2, 0.5, 0.3, 0.6, 0.4]
    fig = draw_reward_kl({"r1-mdloo": list(zip(kl, reward))}, plt)
    ax = fig.axes[0]
    path = next(line for line in ax.lines if "r1-mdloo" in line.get_label())
    assert list(path.get_xdata()) == pytest.approx(trailing_mean(kl, KL_WINDOW))
    assert list(path.get_ydata()) == pytest.approx(trailing_mean(reward, KL_WINDOW))
    assert list(path.get_xdata()) != pytest.approx(kl)  # the raw zig-zag is no longer the path
    raw = ax.collections[0].get_offsets()
    assert [float(x) for x, _ in raw] == pytest.approx(kl)  # the raw steps are still shown, as dots
    assert [float(y) for _, y in raw] == pytest.approx(reward)
    label = ax.get_xlabel()
    assert "k1" in label and "below 0" in label and "trailing mean" in label
    assert any(list(line.get_xdata()) == [0.0, 0.0] for line in ax.lines)  # the KL = 0 floor is marked
    plt.close(fig)


def _write_metrics(folder, records):
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))


def test_training_curves_per_member_from_metrics_jsonl(tmp_path):
    run = RunDir(tmp_path / "run")
    members = run.round(1) / "members"
    rl = [{"source": "trainer", "step": s, "loss": 1.0 / s, "kl": 0.01 * (s - 3), "reward": 0.1 * s}
          for s in range(1, 11)]
    rl.append({"source": "trainer", "step": 10, "train_runtime": 3.0, "train_loss": 0.2, "loss": 99.0})
    _write_metrics(members / "r1-mdloo", rl)
    _write_metrics(members / "r1-dpo", [{"source": "trainer", "step": 1, "loss": 0.69, "rewards/accuracies": 0.5},
                                        {"source": "selection", "step": 2, "loss": 5.0},
                                        {"source": "trainer", "step": 2, "loss": 0.6, "rewards/accuracies": 0.75}])
    (members / "r1-empty").mkdir()
    (members / "r1-dpo" / "meta.json").write_text(json.dumps({"recipe": "dpo"}))
    curves = member_curves([json.loads(x) for x in (members / "r1-mdloo" / "metrics.jsonl").read_text().splitlines()])
    assert list(curves) == ["loss", "reward", "kl"]
    assert len(curves["loss"]) == 10 and 99.0 not in [v for _, v in curves["loss"]]  # the summary record is out
    assert curves["kl"][0] == (1.0, pytest.approx(-0.02))  # negative KL steps are kept, not clipped
    plots = tmp_path / "plots"
    plots.mkdir()
    (plots / "training_r0-gone.png").write_bytes(b"stale")
    lines = write_training_plots(run, 1, plots, plt, {"r1-mdloo": "mdloo"})
    for name in ("r1-mdloo", "r1-dpo"):
        png = plots / f"training_{name}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000
        assert any(f"(plots/training_{name}.png)" in line for line in lines)
    assert not (plots / "training_r0-gone.png").exists() and not (plots / "training_r1-empty.png").exists()
    assert any("r1-dpo (dpo): loss, rewards/accuracies" in line for line in lines)  # recipe from meta.json
    assert any("No training records" in line and "r1-empty" in line for line in lines)


def test_training_series_reads_steps_and_skips_summaries():
    records = [{"step": 1, "loss": 2.0}, {"loss": 1.5}, {"step": 5, "loss": float("nan")}, {"step": 6, "loss": True},
               {"step": 7, "loss": 1.0, "source": "trainer"}, {"step": 8, "loss": 0.1, "train_runtime": 2.0},
               {"step": 9, "loss": 0.0, "source": "selection"}]
    assert training_series(records, "loss") == [(1.0, 2.0), (2.0, 1.5), (7.0, 1.0)]
    assert training_series(records, "kl") == []
