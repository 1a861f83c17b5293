"""Handlers of `afm-align annotate`, `afm-align annotators ...` and `afm-align labels ...`.

`afm_align/cli.py` parses the arguments and calls these; only `annotate` imports Gradio.

- `annotators add NAME [--admin] [--quota N]` (password from --password-stdin or a prompt),
  `annotators passwd NAME`, `annotators quota NAME N`, `annotators list`
- `labels import --data DIR [--round N] [--k K] [--gold]`: queue the pairs of a preference dataset
  (response_a = chosen, response_b = rejected; `--gold` records chosen as the known answer)
- `labels export [--round N] [--soft] [--out DIR [--overwrite]]`: the preference dataset of DESIGN §2,
  with the annotators' justifications on its rows and every justification and skip reason in
  annotations.jsonl (an earlier export at --out is replaced only with --overwrite)
- `labels status`: progress, settings and agreement figures
- `annotate [--port P] [--guidelines FILE] [--grades required|optional|off] [--lease-minutes M]`: the
  app; the two settings are stored in the label store (they stay until changed; defaults: optional, 30)

Bad input is refused before anything is created: a command that fails leaves no run folder and no
`labels.sqlite` behind. A read-only run directory or a full disk is one line naming the path and the
cause (exit 2), never a traceback: the label store opens read-only where it cannot write (so `labels
status`, `labels export --out DIR` and `annotators list` still work), writing commands refuse before
prompting or reading anything, and a failed write is rolled back (`afm_align/label_db.py`).

Run: `afm-align labels export --run demo --round 1 --soft`.
"""
from __future__ import annotations

import getpass
import json
import socket
import sys
from pathlib import Path

from afm_align.errors import UserError
from afm_align.label_accounts import check_name, check_password_rules
from afm_align.label_export import NOTES_FILE, write_export
from afm_align.label_store import LabelStore, check_settings, pair_rows
from afm_align.rundir import RunDir


def _run_dir(run: str) -> RunDir:
    rd = RunDir.named(run)
    rd.check_format()
    return rd


def _store(run: str, must_exist: bool = True, write: bool = False) -> tuple[RunDir, LabelStore]:
    """The run and its label store; `write`: a store that cannot be written is refused up front.

    With `must_exist=False` the run folder and the store are created: check the input first."""
    rd = _run_dir(run)
    if must_exist and not rd.labels.is_file():
        raise UserError(f"run '{run}' has no label store ({rd.labels} does not exist)")
    try:
        rd.root.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise UserError(f"cannot create the run directory {rd.root}: {err.strerror or err}") from None
    store = LabelStore(rd.labels)
    if write and store.readonly:
        raise UserError(f"cannot write the label store {rd.labels}: it is read-only here ({store.readonly})")
    return rd, store


def _password(args) -> str:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        raise UserError("the two passwords differ")
    return first


def annotators(args) -> int:
    """Create and manage annotator accounts of a run's label store."""
    if args.action in ("add", "passwd", "quota") and not args.name:
        raise UserError(f"'annotators {args.action}' needs an annotator NAME")
    if args.action == "add":
        store = _add_annotator(args)
    else:
        _, store = _store(args.run, write=args.action != "list")
        if args.action in ("passwd", "quota"):
            store.user(args.name)    # an unknown user is a clear error before any prompt
        actions = {"passwd": lambda: store.set_user(args.name, password=_password(args)),
                   "quota": lambda: store.set_user(args.name, quota=args.quota), "list": lambda: None}
        actions[args.action]()
    for user in store.users():
        if args.action == "list" or user["name"] == args.name:
            role = "admin" if user["admin"] else "annotator"
            print(f"{user['name']}\t{role}\tquota={user['quota'] or '-'}\t{json.dumps(store.progress(user['name']))}")
    return 0


def _add_annotator(args) -> LabelStore:
    """`annotators add`: name and password are checked before a new store (or run folder) is created;
    an existing store is opened first, so a read-only one or a taken name is refused before the prompt."""
    check_name(args.name)
    rd = _run_dir(args.run)
    if rd.labels.is_file():
        _, store = _store(args.run, write=True)
        if any(u["name"] == args.name for u in store.users()):
            raise UserError(f"annotator '{args.name}' already exists")
        password = check_password_rules(_password(args))
    else:
        password = check_password_rules(_password(args))
        _, store = _store(args.run, must_exist=False, write=True)
    store.add_user(args.name, password, admin=args.admin, quota=args.quota)
    return store


def labels(args) -> int:
    """Import pairs into the queue, export the preference dataset, or print the labelling status."""
    return {"import": _import, "export": _export, "status": _status}[args.action](args)


def _import(args) -> int:
    from afm_align.store import read_rows

    if not args.data:
        raise UserError("'labels import' needs --data DIR (a preference dataset folder)")
    pair_rows([], 0, args.k)
    round_ = args.round if args.round is not None else 0
    rows = read_rows(args.data, "preference")
    pairs = [{"pair_id": row["id"], "prompt": row["prompt"], "response_a": _text(row["chosen"]),
              "response_b": _text(row["rejected"]), "member_a": row.get("member_chosen"),
              "member_b": row.get("member_rejected"), "domain": row.get("domain"),
              "gold": "a" if args.gold else None} for row in rows]
    pair_rows(pairs, round_, args.k)          # bad pairs or --k are refused before the store is created
    _, store = _store(args.run, must_exist=False, write=True)
    added = store.add_pairs(pairs, round=round_, k=args.k)
    print(f"queued {added} new pairs ({len(pairs) - added} already there) for round {round_}, "
          f"{args.k} annotators each")
    return 0


def _text(value) -> str:
    """A chosen/rejected value as text: a string, or the content of the assistant messages."""
    if isinstance(value, str):
        return value
    return "\n\n".join(m["content"] for m in value if m.get("role") == "assistant") or value[-1]["content"]


def _export(args) -> int:
    from afm_align.store import content_hash, dataset_dirname

    rd, store = _store(args.run)
    rows = store.export_preferences(round=args.round, soft=args.soft)
    if not rows:
        where = f"round {args.round} of " if args.round is not None else ""
        raise UserError(f"{where}run '{args.run}' has no labels to export")
    out = Path(args.out) if args.out else rd.data / dataset_dirname("preference", content_hash(rows))
    try:
        manifest, notes = write_export(store, out, round=args.round, soft=args.soft,
                                       overwrite=getattr(args, "overwrite", False) or not args.out)
    except OSError as err:      # a read-only or full disk: write_dataset leaves nothing half-written
        where = err.filename or out
        raise UserError(f"cannot write the export to {where}: {err.strerror or err}"
                        + ("" if args.out else " (pass a writable folder with --out)")) from None
    print(f"wrote {manifest.rows} preference rows to {out} (and {notes} justifications and skip reasons "
          f"to {NOTES_FILE})")
    return 0


def _status(args) -> int:
    from ui.agreement import agreement_report, annotator_stats

    _, store = _store(args.run)
    labels = store.labels(round=args.round)
    pairs = store.pairs(args.round)
    print(f"pairs: {len(pairs)}  labelled pairs: {store.count_labelled(args.round)}  labels: {len(labels)}")
    print("settings: " + "  ".join(f"{k}={v}" for k, v in store.settings().items()))
    report = agreement_report(labels)
    for dim, alpha in report["alpha"].items():
        print(f"alpha[{dim}] = {'-' if alpha is None else f'{alpha:.3f}'} over {report['units'][dim]} units")
    for row in annotator_stats(labels, pairs):
        print(json.dumps(row))
    return 0


def check_port_number(port) -> int:
    """`port` if it is a TCP port number (1-65535), else a one-line UserError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise UserError(f"port must be 1-65535 (got {port})")
    return port


def check_port(host: str, port: int) -> None:
    """A UserError naming the port when it is no port number or cannot be bound on `host`."""
    check_port_number(port)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except (OSError, OverflowError):
            raise UserError(f"port {port} on {host} is in use (or not available); pick another with --port") from None


def annotate(args) -> int:
    """Serve the annotation app until interrupted; never creates a run folder or a store."""
    check_port_number(args.port)
    settings = check_settings(getattr(args, "grades", None), getattr(args, "lease_minutes", None))
    if args.guidelines and not Path(args.guidelines).is_file():
        raise UserError(f"guidelines file {args.guidelines} does not exist")
    no_one = (f"run '{args.run}' has no annotators yet: add one with "
              f"'afm-align annotators add NAME --admin --run {args.run}'")
    if not _run_dir(args.run).labels.is_file():
        raise UserError(no_one)
    rd, store = _store(args.run, write=True)
    if not store.users():
        raise UserError(no_one)
    check_port(args.host, args.port)
    if settings:
        store.set_settings(**settings)
    from ui.annotate_app import serve

    serve(rd, host=args.host, port=args.port, guidelines=args.guidelines)
    return 0
