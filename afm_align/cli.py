"""The `afm-align` command line: one entry point for the whole workbench.

Heavy libraries (torch, transformers, trl, gradio) are imported inside the handlers, so
`afm-align --help` stays instant. A user mistake (bad preset, missing path, unknown config key,
malformed dataset row, ...) surfaces as an `afm_align.errors.UserError` and is printed as one line on
stderr with exit code 2; anything else (a library error, a bug) keeps its traceback and exits with 1.

Run: `afm-align --help`, `afm-align init --preset tiny`.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
if os.environ.get("AFM_ALIGN_QUIET") == "1":  # tests and scripts: no library progress bars either
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


def _cmd_iterate(args: argparse.Namespace) -> int:
    from committee import iterate_cli

    return iterate_cli.cli_main(args)


def _add_iterate_command(sub) -> None:
    """`iterate` (issue #6: the resumable iTeC round runner)."""
    p = sub.add_parser("iterate", help="run iTeC committee rounds up to --round N (resumable; round 0 = init + SFT)",
                       epilog="common keys: threads=N (torch threads of the rounds, fixed so resumes are exact), "
                              "init_threads=N (the base's pre-training; 0 = the free cores), seed=N, eval_prompts=N, "
                              "recipes.dpo=[beta=0.2]; all keys: configs/tiny/iterate.yaml. The run records them "
                              "(runs/<name>/iterate_settings.json) and later rounds reuse them.")
    p.add_argument("--round", type=int, required=True, help="run every missing round up to N (N >= 1)")
    p.add_argument("--run", default=None, help="run name under ./runs (default: the preset's, 'default')")
    p.add_argument("--annotator", default=None, help="oracle | human | judge (default: the preset's, oracle)")
    p.add_argument("--members", default=None, help="candidates of each round, e.g. sft,rs,dpo,ipo,mdloo")
    p.add_argument("--system", default=None,
                   help="afm | llama3.1 | qwen2 | gemma2: the round structure of that post-training system "
                        "(configs/<preset>/systems/<system>.yaml; default: the run's, else afm)")
    p.add_argument("--preset", default=None, help="config preset under configs/ (default: the run's, else tiny)")
    p.add_argument("--config", default=None, help="a YAML file of config keys")
    p.add_argument("overrides", nargs="*", metavar="key=value",
                   help="config overrides; a run records them and later rounds reuse them")
    p.set_defaults(handler=_cmd_iterate)


# `init` pre-trains with OpenMP's passive wait policy unless the environment says otherwise. Measured
# (benchmarks/threads_under_load.py, 2-core machine, tiny preset): with another torch job on the machine,
# 2 threads spinning at their barriers took a median 0.63 s a step with stalls up to 7 s; passive, 0.34 s and
# 0.43 s at most; with one core busy, 0.80 s against 0.47 s. Quiet, passive costs ~13% a step (and 17-30% in
# generation's many small ops, which is why `iterate` keeps OpenMP's default). It must be set before torch
# loads (OpenMP reads it once), so here, in the handler, before anything imports torch.
INIT_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}


def _cmd_init(args: argparse.Namespace) -> int:
    for key, value in INIT_ENV.items():
        os.environ.setdefault(key, value)  # OMP_WAIT_POLICY=ACTIVE afm-align init ... keeps spinning
    from afm_align import init_base
    from synth.corpus import pretraining_corpus

    overrides = list(args.overrides)
    if args.run:
        overrides.append(f"run={args.run}")
    if args.base:
        overrides.append(f"base={args.base}")
    cfg = init_base.load(preset=args.preset, config_file=args.config, overrides=overrides)
    from afm_align.rundir import RunDir

    init_base.check_rebuild(RunDir.named(cfg.run), args.force)
    init_base.main(cfg, *pretraining_corpus(cfg))
    return 0


def _cmd_synth(args: argparse.Namespace) -> int:
    from synth import builders

    builders.cli_main(args)
    return 0


def _cmd_rm(args: argparse.Namespace) -> int:
    model = getattr(args, "model", None)
    if model and not os.path.isfile(os.path.join(model, "config.json")):  # before torch loads (seconds)
        from afm_align.errors import UserError

        raise UserError(f"--model {model}: not a trained reward-model directory (train one with `afm-align rm train`)")
    from reward_model import cli_handlers

    return cli_handlers.run(args)


def _cmd_annotate(args: argparse.Namespace) -> int:
    from ui import commands

    return commands.annotate(args)


def _cmd_annotators(args: argparse.Namespace) -> int:
    from ui import commands

    return commands.annotators(args)


def _cmd_labels(args: argparse.Namespace) -> int:
    from ui import commands

    return commands.labels(args)


def _add_label_commands(sub) -> None:
    """`annotate`, `annotators` and `labels` (issue #7: the annotation app and the label store)."""
    p = sub.add_parser("annotate", help="serve the Gradio annotation app of a run (login required)")
    p.add_argument("--run", required=True, help="run name under ./runs")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=7860)
    p.add_argument("--guidelines", default=None, help="a markdown file of guidelines (default: built in)")
    p.add_argument("--grades", choices=["required", "optional", "off"], default=None,
                   help="grades per response (stored in the label store; default optional)")
    p.add_argument("--lease-minutes", type=float, default=None,
                   help="minutes an open pair stays with its annotator before others may take it "
                        "(stored; default 30; 0: never)")
    p.set_defaults(handler=_cmd_annotate)

    p = sub.add_parser("annotators", help="manage the annotator accounts of a run's label store")
    p.add_argument("action", choices=["add", "passwd", "quota", "list"])
    p.add_argument("name", nargs="?", default=None, help="annotator name")
    p.add_argument("--run", default="default", help="run name under ./runs (default: default)")
    p.add_argument("--admin", action="store_true", help="give the admin role (agreement pages)")
    p.add_argument("--quota", type=int, default=None, help="labels this annotator should do (0: none)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    p.set_defaults(handler=_cmd_annotators)

    p = sub.add_parser("labels", help="queue pairs for labelling, export labels, show labelling status")
    p.add_argument("action", choices=["import", "export", "status"])
    p.add_argument("--run", required=True, help="run name under ./runs")
    p.add_argument("--round", type=int, default=None, help="only this round (import: default 0)")
    p.add_argument("--data", default=None, help="import: a preference dataset folder")
    p.add_argument("--k", type=int, default=2, help="import: annotators per pair (default 2)")
    p.add_argument("--gold", action="store_true", help="import: chosen is the known answer (gold items)")
    p.add_argument("--soft", action="store_true", help="export: one row per pair with target_prob")
    p.add_argument("--out", default=None, help="export: output folder (default: the run's data/)")
    p.add_argument("--overwrite", action="store_true", help="export: replace a preference dataset at --out")
    p.set_defaults(handler=_cmd_labels)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    from committee import cli_handlers

    return cli_handlers.leaderboard(args)


def _cmd_compare(args: argparse.Namespace) -> int:
    from committee import cli_handlers

    return cli_handlers.compare(args)


def _cmd_eval(args: argparse.Namespace) -> int:
    from committee import member_eval

    return member_eval.cli_main(args)


def _add_eval_commands(sub) -> None:
    """`eval`, `leaderboard` and `compare`: evaluation of committee members (dev decides, test reports)."""
    p = sub.add_parser("eval", help="score a member on a prompt dataset's dev or test split with the verifiers")
    p.add_argument("--run", default="default", help="run name under ./runs (default: default)")
    p.add_argument("--member", required=True, help="a member of the run (e.g. r3-rs), or base")
    p.add_argument("--data", default=None, help="a prompt dataset folder (default: the run's own dev/test prompts)")
    p.add_argument("--split", default="dev", choices=["dev", "test"], help="dev (decisions) or test (reports)")
    p.add_argument("--json", default=None, help="also write the report to this JSON file")
    p.add_argument("--max-new-tokens", type=int, default=64, help="greedy answer length (default 64)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(handler=_cmd_eval)

    p = sub.add_parser("leaderboard", help="print the members' leaderboard of a run (dev and test accuracy, Elo)")
    p.add_argument("--run", default="default", help="run name under ./runs (default: default)")
    p.add_argument("--round", type=int, default=None, help="round N (default: the latest evaluated)")
    p.set_defaults(handler=_cmd_leaderboard)

    p = sub.add_parser("compare", help="compare two committee members: per-domain deltas and samples")
    p.add_argument("member_a", metavar="MEMBER_A", help="a member name, unique within the run (e.g. r1-dpo)")
    p.add_argument("member_b", metavar="MEMBER_B", help="the member to compare against (e.g. r0-sft)")
    p.add_argument("--run", default="default", help="run name under ./runs (default: default)")
    p.add_argument("--round", type=int, default=None,
                   help="read this round's eval files (default: the latest evaluated round holding both)")
    p.add_argument("--samples", type=int, default=3, help="side-by-side samples to print (default 3)")
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (default 0)")
    p.set_defaults(handler=_cmd_compare)


def _cmd_on_device(args: argparse.Namespace) -> int:
    from committee import on_device

    return on_device.cli_main(args)


def _cmd_serve(args: argparse.Namespace) -> int:
    from alignment import adapter_serving

    return adapter_serving.cli_main(args)


def _add_on_device_commands(sub) -> None:
    """`on-device` (the whole track, resumable) and `serve` (task adapters swapped over one base)."""
    p = sub.add_parser("on-device", help="AFM's on-device track: teacher, pruned + distilled student, palettisation, "
                                         "recovery and task adapters, serving (resumable)",
                       epilog="common keys: seeds=[0,1,2], schemes=[4bit,mixed,2bit], ranks=[8,16,32], member=PATH "
                              "(compress an existing member), adapter=[corpus_steps=N,...] (per-recipe keys)")
    p.add_argument("--run", default="default", help="run name under ./runs; the track writes runs/<run>/on_device/")
    p.add_argument("--preset", default="tiny", help="config preset under configs/ (default: tiny)")
    p.add_argument("--config", default=None, help="a YAML file of config keys")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(handler=_cmd_on_device)
    p = sub.add_parser("serve", help="answer JSON-line requests with task adapters switched over one (palettised) base")
    p.add_argument("--base", required=True, help="the base the adapters were trained on (e.g. a quantize member)")
    p.add_argument("--adapter", action="append", default=[], metavar="NAME=DIR", help="an adapter to load (repeat)")
    p.add_argument("--requests", default=None, help="a JSONL file of requests (default: stdin)")
    p.add_argument("--max-new-tokens", type=int, default=64, help="greedy answer length (default 64)")
    p.set_defaults(handler=_cmd_serve)


def _cmd_train(args: argparse.Namespace) -> int:
    from alignment import cli_handlers

    return cli_handlers.run(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="afm-align",
        description="Post-training workbench reproducing Apple's AFM system: reward model with grading "
                    "heads, iTeC committee rounds (SFT, rejection sampling, DPO/IPO, MDLOO), synthetic data.",
    )
    from afm_align import __version__
    parser.add_argument("--version", action="version", version=f"afm-align {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("init", help="build the tokenizer and pre-train the tiny AFM base model of a run",
                       epilog="common keys: threads=N (torch threads; 0, the default, = the cores free when it starts, "
                              "so a busy machine is not oversubscribed), steps=N, seed=N, shape.num_layers=N; "
                              "all keys: configs/tiny/init.yaml")
    p.add_argument("--run", default=None, help="run name under ./runs (default: the preset's, 'default')")
    p.add_argument("--preset", default="tiny", help="config preset under configs/ (default: tiny)")
    p.add_argument("--base", default=None, help="use this local Hugging Face causal-LM directory instead")
    p.add_argument("--force", action="store_true", help="rebuild the base of a run that already has one")
    p.add_argument("--config", default=None, help="a YAML file of config keys")
    p.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    p.set_defaults(handler=_cmd_init)

    p = sub.add_parser("synth", help="generate a synthetic dataset (math, tool, code, if, safety, summarize, general, prefs)")
    p.add_argument("family", help="math | tool | code | if | safety | summarize | general | prefs")
    p.add_argument("--n", type=int, required=True, help="number of items to generate")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", required=True, help="output dataset folder (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds when it is the same kind of output (never anything else)")
    p.add_argument("--kind", default="prompt", choices=["prompt", "sft"], help="prompt rows or sft rows")
    p.add_argument("--difficulty", type=int, default=1, help="0 (easiest) and up")
    p.add_argument("--dev", type=float, default=0.15, help="share of problem identities in the dev split")
    p.add_argument("--test", type=float, default=0.15, help="share of problem identities in the test split")
    p.set_defaults(handler=_cmd_synth)

    p = sub.add_parser("rm", help="train, evaluate or apply the multi-head reward model")
    rm_sub = p.add_subparsers(dest="rm_command", metavar="ACTION", required=True)
    q = rm_sub.add_parser("train", help="train the RM on a preference dataset")
    q.add_argument("--data", required=True)
    q.add_argument("--out", required=True, help="the RM directory to write (config key: out)")
    q.add_argument("--overwrite", action="store_true", help="replace what --out holds when it is the same kind of output (never anything else)")
    q.add_argument("--base", default=None,
                   help="backbone directory (config key: from_checkpoint; default: the run's base)")
    q.add_argument("--run", default=None)
    q.add_argument("--preset", default="tiny")
    q.add_argument("--config", default=None)
    q.add_argument("overrides", nargs="*", metavar="key=value")
    q = rm_sub.add_parser("eval", help="evaluate an RM on a preference dataset")
    q.add_argument("--model", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--json", default=None, help="also write the metrics to this JSON file")
    q = rm_sub.add_parser("score", help="score responses with an RM")
    q.add_argument("--model", required=True)
    q.add_argument("--data", required=True)
    q.add_argument("--out", required=True, help="output response dataset folder (new or empty)")
    q.add_argument("--overwrite", action="store_true", help="replace what --out holds when it is the same kind of output (never anything else)")
    p.set_defaults(handler=_cmd_rm)

    _add_label_commands(sub)
    _add_eval_commands(sub)
    from alignment.recipes import RECIPES  # the recipe table (imports no recipe module)

    p = sub.add_parser("train", help=f"train a policy member: {', '.join(RECIPES)}")
    p.add_argument("recipe", choices=list(RECIPES), help="; ".join(f"{k}: {r.summary}" for k, r in RECIPES.items()))
    p.add_argument("--from", dest="from_checkpoint", required=True, help="starting checkpoint (base or member dir)")
    p.add_argument("--data", default="", help="dataset folder (sft, prompt or preference, by recipe; merge reads none)")
    p.add_argument("--out", required=True, help="member directory to write (new or empty)")
    p.add_argument("--overwrite", action="store_true", help="replace what --out holds when it is the same kind of output (never anything else)")
    p.add_argument("--rm", default=None, help="reward-model directory (RS reranking, MDLOO reward, SFT best-of-N)")
    p.add_argument("--preset", default="tiny")
    p.add_argument("--config", default=None, help="a YAML file of config keys")
    p.add_argument("overrides", nargs="*", metavar="key=value")
    p.set_defaults(handler=_cmd_train)

    _add_iterate_command(sub)
    _add_on_device_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    # key=value overrides may come before or after the options: collect the stray ones here.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any("=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = [*args.overrides, *extra]
    if not getattr(args, "handler", None):
        parser.print_help()
        return 2
    from afm_align.errors import UserError

    on_main_thread = threading.current_thread() is threading.main_thread()
    if on_main_thread:  # `kill`: unwind like Ctrl-C, so staging folders are removed
        previous = signal.signal(signal.SIGTERM, _terminated)
    try:
        return args.handler(args) or 0
    except UserError as err:
        print(f"afm-align {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"afm-align {args.command}: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print(f"afm-align {args.command}: terminated (SIGTERM); its staging folders were removed", file=sys.stderr)
        return 143
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


class Terminated(BaseException):
    """SIGTERM turned into an exception, so `finally` blocks (staging cleanup) run as they do on Ctrl-C."""


def _terminated(signum, frame):
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM kills at once
    raise Terminated()


if __name__ == "__main__":
    sys.exit(main())
