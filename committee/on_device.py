"""Recipe: `afm-align on-device` - AFM's on-device track end to end, resumable, on one track folder.

Reads top to bottom (`main(cfg)`); every step is a recipe of the table (`alignment.recipes`) writing a member
directory with provenance, and a step whose output is complete is skipped, so a killed track resumes:
1. data (`committee.on_device_data`): pre-training conversations, SFT rows, dev/test prompts, the
   summarisation task's rows and its hidden gold;
2. teacher: `afm-align init` with the teacher preset (`configs/<preset>/teacher.yaml`, ~4.5x the tiny base);
3. student: `prune` (structured pruning of the teacher to the tiny shape) then `distill` with AFM's target
   (0.9 x teacher top-1 + 0.1 x label), per seed; baseline: the same student shape from random weights,
   `distill kd_mode=none` for the same steps and batches (equal student compute);
4. post-trained member: `sft` of the seed-0 distilled student (or `member=PATH`, an existing member);
5. quantisation (`quantize`): each scheme (4-bit, mixed ~3.5 bpw, 2-bit at 16-row blocks, and 4-bit with
   one look-up table per whole tensor for the block-size claim);
6. accuracy-recovery adapters (`adapter`): ranks 8/16/32 x seeds on every scheme, trained on the frozen
   palettised model (pre-training text, then SFT data); at rank 16 also with the unquantised member's
   distribution as the target;
7. task adapters on the rank-16 recovery adapter of the mixed scheme: `summarize` (data written by the larger
   model, the teacher fine-tuned on reference summaries) and `math`;
8. serving: one process, one palettised base, the adapters switched per request (`alignment.adapter_serving`);
9. results: every measurement in `results.json`, the tables in `report.md` (`committee.on_device_report`).

Evaluations (`committee.on_device_eval`) are cached in `evals/<name>.json`; test rows are only reported.

Run: `afm-align on-device --run NAME [--preset tiny] [key=value ...]` (folder `runs/<NAME>/on_device/`).
"""
from __future__ import annotations

import json
import resource
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from afm_align.config import load_config
from afm_align.errors import UserError
from afm_align.rundir import RunDir
from afm_align.store import read_rows, write_dataset, write_json_atomic


@dataclass
class OnDeviceConfig:
    """The on-device track: sizes of each step (per-recipe keys go in the recipe lists as key=value)."""

    run: str = "default"  # the track folder is runs/<run>/on_device/
    member: str | None = None  # an existing post-trained member to compress instead of the track's own student
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])  # training seeds of students and adapters
    data_seed: int = 0
    corpus_items: int = 600  # pre-training conversations per family (train split kept)
    corpus_math_items: int = 3000
    prompts_per_family: int = 300  # SFT / dev / test prompt rows per family (split by problem identity)
    heldout_per_family: int = 100  # test-split conversations for the held-out LM loss
    summarize_items: int = 700
    eval_per_domain: int = 40  # test prompts per domain for accuracy
    eval_max_new_tokens: int = 48
    schemes: list[str] = field(default_factory=lambda: ["4bit", "mixed", "2bit"])
    ranks: list[int] = field(default_factory=lambda: [8, 16, 32])
    group_size: int = 16  # rows per look-up table (AFM: 16); the block claim adds one table per tensor
    task_data_words: int = 40  # rule filter of the larger model's summaries (non-empty, at most this many words)
    task_rows: int = 1200  # train documents the larger model summarises for the summarize adapter
    teacher: list[str] = field(default_factory=list)  # init keys for the teacher (over configs/<preset>/teacher.yaml)
    prune: list[str] = field(default_factory=list)  # key=value for each recipe, over its preset YAML
    distill: list[str] = field(default_factory=list)
    sft: list[str] = field(default_factory=list)
    quantize: list[str] = field(default_factory=list)
    adapter: list[str] = field(default_factory=list)
    task_adapter: list[str] = field(default_factory=list)
    writer: list[str] = field(default_factory=list)  # distill keys of the larger model's summarisation fine-tuning
    serve_requests: int = 40


def load(preset: str = "tiny", config_file: str | None = None, overrides=()) -> OnDeviceConfig:
    """The resolved track config."""
    return load_config(OnDeviceConfig, preset=preset, recipe="on_device", config_file=config_file,
                       overrides=list(overrides))


class Track:
    """Paths, cached results and the step runner of one track folder."""

    def __init__(self, cfg: OnDeviceConfig, preset: str):
        self.cfg, self.preset = cfg, preset
        self.root = RunDir.named(cfg.run).root / "on_device"
        self.results_file = self.root / "results.json"
        self.results = json.loads(self.results_file.read_text()) if self.results_file.is_file() else {}
        self.results.setdefault("seconds", {})

    def path(self, name: str) -> Path:
        return self.root / name

    def save(self) -> None:
        self.results["peak_rss_mb"] = max(self.results.get("peak_rss_mb", 0),
                                          round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1))
        write_json_atomic(self.results_file, self.results)

    def recipe(self, name: str, out: str, extra: list, **fields) -> Path:
        """Run recipe `name` into `<track>/<out>` unless it is already complete; its folder."""
        from alignment import recipes

        target = self.path(out)
        if (target / "meta.json").is_file():
            return target
        start = time.perf_counter()
        cfg = recipes.load(name, preset=self.preset, overrides=[*getattr(self.cfg, name, []), *extra],
                           out=str(target), **fields)
        recipes.main_of(name)(cfg)
        self.results["seconds"][out] = round(time.perf_counter() - start, 1)
        self.save()
        return target

    def evaluation(self, name: str, compute) -> dict:
        """A cached evaluation: `compute()` once, then read from evals/<name>.json."""
        file = self.root / "evals" / f"{name}.json"
        if file.is_file():
            return json.loads(file.read_text())
        value = compute()
        write_json_atomic(file, value)
        return value


# ---- steps ----------------------------------------------------------------------------------------------

def build_teacher(track: Track) -> Path:
    """The teacher: the preset's init with the teacher shape and budget, in <track>/teacher/base."""
    from afm_align import init_base
    from afm_align.config import preset_file
    from synth.corpus import pretraining_corpus

    base = track.path("teacher") / "base"
    if (base / "meta.json").is_file():
        return base
    start = time.perf_counter()
    cfg = load_config(init_base.InitConfig, preset=track.preset, recipe="init",
                      config_file=preset_file(track.preset, "teacher"), overrides=list(track.cfg.teacher))
    cfg = replace(cfg, run=str(track.path("teacher")))
    init_base.main(cfg, *pretraining_corpus(cfg))
    track.results["seconds"]["teacher"] = round(time.perf_counter() - start, 1)
    track.results["teacher"] = json.loads((base / "meta.json").read_text())
    track.save()
    return base


def model_eval(track: Track, name: str, path: Path, data: dict, *, accuracy: bool = True) -> dict:
    """Held-out LM loss (and test accuracy per domain) of a plain, palettised or adapted model."""
    def compute():
        from afm_align.adapter_io import load_model
        from committee.on_device_data import capped_test_rows, conversations_of
        from committee.on_device_eval import domain_accuracy, heldout_loss

        model, tok = load_model(path)
        out = {"model": str(path), "heldout_loss": heldout_loss(model, tok, conversations_of(read_rows(data["heldout"])))}
        if accuracy:
            rows = capped_test_rows(data["test"], track.cfg.eval_per_domain)
            out["test"] = domain_accuracy(model, tok, rows, name=name, max_new_tokens=track.cfg.eval_max_new_tokens)
        return out
    return track.evaluation(name, compute)


def students(track: Track, teacher: Path, data: dict) -> dict:
    """Pruned + distilled students and the from-scratch baseline, per seed, with their evaluations."""
    pruned = track.recipe("prune", "student-pruned", [], from_checkpoint=str(teacher), data=str(data["corpus"]))
    out = {"teacher": model_eval(track, "teacher", teacher, data), "student-pruned": model_eval(track, "student-pruned", pruned, data)}
    for seed in track.cfg.seeds:
        for kind, fields in (("distilled", dict(from_checkpoint=str(pruned), teacher=str(teacher), kd_mode="top1_mix",
                                                init="checkpoint")),
                             ("scratch", dict(from_checkpoint=str(pruned), teacher=None, kd_mode="none", init="random"))):
            name = f"student-{kind}-s{seed}"
            path = track.recipe("distill", name, [], data=str(data["corpus"]), seed=seed, **fields)
            out[name] = model_eval(track, name, path, data)
    return out


def post_trained(track: Track, data: dict) -> Path:
    """The member to compress: `member=PATH`, else the SFT of the seed-0 distilled student."""
    if track.cfg.member:
        if not (Path(track.cfg.member) / "meta.json").is_file():
            raise UserError(f"member={track.cfg.member}: not a member directory (no meta.json)")
        return Path(track.cfg.member)
    start = track.path(f"student-distilled-s{track.cfg.seeds[0]}")
    return track.recipe("sft", "post-trained", [], from_checkpoint=str(start), data=str(data["sft"]),
                        heldout=str(data["dev"]))


def scheme_fields(scheme: str, group_size: int) -> dict:
    """The quantize recipe's fields of a track scheme (`4bit-whole`: 4 bits, one table per tensor)."""
    return {"scheme": "4bit", "group_size": 0} if scheme == "4bit-whole" else {"scheme": scheme, "group_size": group_size}


def quantised(track: Track, member: Path, data: dict) -> dict[str, Path]:
    """Each scheme's palettised member."""
    out = {}
    for scheme in [*track.cfg.schemes, "4bit-whole"]:
        out[scheme] = track.recipe("quantize", f"q-{scheme}", [], from_checkpoint=str(member), data=str(data["corpus"]),
                                   **scheme_fields(scheme, track.cfg.group_size))
    return out


def recovery(track: Track, member: Path, bases: dict[str, Path], data: dict) -> dict:
    """Recovery adapters per scheme x rank x seed, rank-16 KD-target ones and rank-16 ones on the unquantised
    member (the ceiling the recovered share is measured against), each evaluated."""
    runs = [(s, r, seed, "labels") for s in track.cfg.schemes for r in track.cfg.ranks for seed in track.cfg.seeds]
    runs += [("4bit-whole", 16, seed, "labels") for seed in track.cfg.seeds]
    # the ceiling: the same adapter training on the unquantised member (the data alone lowers the loss too)
    runs += [("full", 16, seed, "labels") for seed in track.cfg.seeds]
    runs += [("mixed", 16, seed, "teacher") for seed in track.cfg.seeds if "mixed" in track.cfg.schemes]
    out = {}
    for scheme, rank, seed, target in runs:
        name = f"ara-{scheme}-r{rank}-s{seed}" + ("-kd" if target == "teacher" else "")
        base = member if scheme == "full" else bases[scheme]
        path = track.recipe("adapter", f"adapters/{name}", [], from_checkpoint=str(base),
                            data=str(data["sft"]), corpus=str(data["corpus"]), lora_rank=rank, seed=seed,
                            teacher=str(member) if target == "teacher" else None, task="recovery")
        out[name] = model_eval(track, name, path, data)
    return out


def task_data(track: Track, teacher: Path, data: dict) -> dict[str, Path]:
    """The summarisation data written by the larger model, and the math task's rows."""
    from afm_align.adapter_io import load_any_base
    from committee.on_device_eval import answers

    writer = track.recipe("distill", "teacher-summarize", ["kd_mode=none", "init=checkpoint", "loss_on=assistant",
                                                           *track.cfg.writer],
                          from_checkpoint=str(teacher), data=str(data["summarize_ref"]), teacher=None, seed=0)
    track.results["writer_dev"] = {k: v for k, v in summarize_eval(track, "writer-dev", writer, data, "summarize_dev")
                                   .items() if k != "scores"}
    out = {"summarize": track.path("data/summarize_task"), "math": track.path("data/math_task")}
    if not (out["summarize"] / ".manifest.json").is_file():
        rows = read_rows(data["summarize_train"], "prompt")[:track.cfg.task_rows]
        model, tok = load_any_base(writer)
        texts = answers(model, tok, rows, max_new_tokens=track.cfg.eval_max_new_tokens)
        kept = [{"id": r["id"], "prompt": r["prompt"], "completion": [{"role": "assistant", "content": t.strip()}],
                 "member": "teacher-summarize", "round": 0, "score": 1.0}
                for r, t in zip(rows, texts) if t.strip() and len(t.split()) <= track.cfg.task_data_words]
        if not kept:
            raise UserError("the larger model wrote no usable summary (all empty or too long); train it longer")
        write_dataset(kept, "sft", out["summarize"], producer="on_device.task_data",
                      config={"writer": str(writer), "kept": len(kept), "of": len(rows)})
        track.results["summarize_task_rows"] = {"kept": len(kept), "of": len(rows)}
    math = [r for r in read_rows(data["sft"], "sft") if r.get("domain") == "math"]
    write_dataset(math, "sft", out["math"], producer="on_device.task_data", config={"domain": "math"})
    return out


def summarize_eval(track: Track, name: str, path: Path, data: dict, split: str = "summarize_test") -> dict:
    """Hidden-gold score of a model's summaries of the test (or dev) documents."""
    def compute():
        from afm_align.adapter_io import load_model
        from committee.on_device_eval import gold_summary_score

        model, tok = load_model(path)
        golds = json.loads(Path(data["summarize_gold"]).read_text())
        return gold_summary_score(model, tok, read_rows(data[split], "prompt"), golds,
                                  max_new_tokens=track.cfg.eval_max_new_tokens)
    return track.evaluation(name, compute)


def task_adapters(track: Track, bases: dict[str, Path], data: dict, tasks: dict[str, Path]) -> dict:
    """Summarize and math adapters on the mixed scheme's rank-16 recovery adapter, per seed, evaluated."""
    scheme = "mixed" if "mixed" in track.cfg.schemes else track.cfg.schemes[0]
    out = {"scheme": scheme}
    for seed in track.cfg.seeds:
        ara = track.path(f"adapters/ara-{scheme}-r16-s{seed}")
        out[f"recovery-s{seed}"] = {"summarize": summarize_eval(track, f"summ-ara-s{seed}", ara, data)}
        for task in ("summarize", "math"):
            path = track.recipe("adapter", f"tasks/{task}-s{seed}", ["corpus_steps=0", *track.cfg.task_adapter],
                                from_checkpoint=str(bases[scheme]), data=str(tasks[task]), corpus=None,
                                init_adapter=str(ara), lora_rank=16, seed=seed, task=task, teacher=None)
            out[f"{task}-s{seed}"] = (summarize_eval(track, f"summ-task-s{seed}", path, data) if task == "summarize"
                                      else model_eval(track, f"task-math-s{seed}", path, data))
    return out


def main(cfg: OnDeviceConfig, preset: str = "tiny") -> dict:
    """Run (or resume) the whole track; returns the results (also in <track>/results.json)."""
    from committee import on_device_report, on_device_serve
    from committee.on_device_data import build_all

    from alignment.quantize import SCHEMES

    if not cfg.seeds or not cfg.schemes or not cfg.ranks:
        raise UserError("seeds, schemes and ranks must each list at least one value")
    bad = [s for s in cfg.schemes if s not in SCHEMES]
    if bad:
        raise UserError(f"schemes: unknown scheme '{bad[0]}'; schemes are: {', '.join(SCHEMES)}")
    if 16 not in cfg.ranks:
        raise UserError("ranks must include 16 (AFM's default: the task adapters and the claims build on it)")
    track = Track(cfg, preset)
    start = time.perf_counter()
    data = build_all(track.path("data"), cfg)
    track.results["seconds"].setdefault("data", round(time.perf_counter() - start, 1))
    teacher = build_teacher(track)
    track.results["students"] = students(track, teacher, data)
    member = post_trained(track, data)
    from afm_align.adapter_io import weight_file

    track.results["full_precision"] = {**model_eval(track, "post-trained", member, data),
                                       "size_bytes": weight_file(member).stat().st_size}
    bases = quantised(track, member, data)
    track.results["quantised"] = {s: {**model_eval(track, f"q-{s}", p, data), "bits": json.loads(
        (p / "meta.json").read_text()).get("bits", {})} for s, p in bases.items()}
    track.results["recovery"] = recovery(track, member, bases, data)
    tasks = task_data(track, teacher, data)
    track.results["tasks"] = task_adapters(track, bases, data, tasks)
    track.results["serving"] = on_device_serve.measure(track, bases, data)
    track.results["wall_seconds_this_call"] = round(time.perf_counter() - start, 1)
    track.save()
    on_device_report.write(track.root, track.results)
    return track.results


def cli_main(args) -> int:
    """`afm-align on-device`: run or resume the track, then print where its tables are."""
    from afm_align.config import preset_file

    preset_file(args.preset, "on_device")  # a preset without the track's YAML: one line
    cfg = replace(load(args.preset, args.config, args.overrides), run=args.run)
    results = main(cfg, preset=args.preset)
    root = RunDir.named(cfg.run).root / "on_device"
    s = results["serving"]
    print(f"on-device: done in {results['wall_seconds_this_call']:.0f} s (peak RSS {results['peak_rss_mb']:.0f} MB); "
          f"tables in {root / 'report.md'}, numbers in {root / 'results.json'}")
    print(f"  serving: {s['responses']}/{s['requests']} requests answered, {s['errors']} errors, "
          f"median adapter switch {s['switch_ms_median']:.3f} ms, {s['saved_share']:.0%} of the weight memory saved")
    return 0
