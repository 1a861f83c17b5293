"""Load test of the label store: concurrent annotator processes label 1,000 labels into one SQLite file.

Each client is a separate process (a real concurrent writer: its own connections, its own pid) that
logs in (checks its password), then loops `next_pair` -> `submit` until the queue has nothing left
for it. Pairs go to k annotators, so `labels / k` pairs are queued. Afterwards the database is checked
against what the clients say they committed:

- lost: a label id a client got back from `submit` that is not in the database (must be 0)
- duplicated: an (annotator, pair) with more than one current label, or extra labels (must be 0)
- double assignments: a pair with more than k live assignments, or an annotator twice on a pair (must be 0)

and labels per second (wall clock of the labelling phase) is printed. A benchmark, not a test: no
figure is asserted anywhere. The dev machine has 2 shared cores, so the figure is a floor.

Run: `python benchmarks/label_store_load.py --clients 8 --labels 1000 --json benchmarks/results/label_store_load.json`
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

if not __package__:  # run as a script: make the repository root importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from afm_align.label_store import LabelStore  # noqa: E402
from afm_align.schema import GRADE_DIMENSIONS  # noqa: E402

PASSWORD = "load-test-password"


def client(db: str, user: str, start, out) -> None:
    """One annotator process: label until the queue is empty for this user; report the label ids."""
    store = LabelStore(db)
    assert store.check_password(user, PASSWORD)
    grades = dict.fromkeys(GRADE_DIMENSIONS, 1)
    start.wait()
    ids, errors = [], 0
    while True:
        assignment = store.next_pair(user)
        if assignment is None:
            break
        try:
            ids.append(store.submit(user, assignment.id, "A", assignment.id % 4, grades, grades,
                                    f"load test {user}", "load-v1"))
        except Exception:   # noqa: BLE001 - counted and reported, never hidden
            errors += 1
    out.put((user, ids, errors))


def check(store: LabelStore, reported: dict[str, list[int]], k: int) -> dict:
    """Compare the database with what the clients committed."""
    current = store.labels()
    history = store.labels(current_only=False)
    stored_ids = {label["id"] for label in history}
    committed = [i for ids in reported.values() for i in ids]
    per_user_pair = Counter((label["user"], label["pair_id"]) for label in current)
    live = Counter(a["pair_id"] for a in store.assignments() if a["state"] in ("open", "done"))
    user_pair = Counter((a["user"], a["pair_id"]) for a in store.assignments())
    return {
        "committed": len(committed), "stored": len(current),
        "lost": len(set(committed) - stored_ids),
        "duplicated": sum(c - 1 for c in per_user_pair.values() if c > 1) + max(0, len(current) - len(committed)),
        "double_assignments": sum(c > k for c in live.values()) + sum(c > 1 for c in user_pair.values()),
        "pairs_short_of_k": sum(1 for p in store.pairs() if live[p] != k),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--labels", type=int, default=1000)
    parser.add_argument("--k", type=int, default=2, help="annotators per pair")
    parser.add_argument("--db", default=None, help="SQLite file (default: a fresh temporary one)")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    if args.k > args.clients:
        raise SystemExit("--k cannot exceed --clients")
    db = Path(args.db or Path(tempfile.mkdtemp(prefix="label-load-")) / "labels.sqlite")
    store = LabelStore(db)
    users = [f"annotator{i}" for i in range(args.clients)]
    for user in users:
        store.add_user(user, PASSWORD)
    n_pairs = args.labels // args.k
    store.add_pairs([{"pair_id": f"load-{i}", "prompt": [{"role": "user", "content": f"prompt {i}"}],
                      "response_a": f"first answer {i}", "response_b": f"second answer {i}"}
                     for i in range(n_pairs)], round=0, k=args.k)
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=client, args=(str(db), user, start, out)) for user in users]
    for proc in procs:
        proc.start()
    time.sleep(2.0)   # let every client import and log in before the clock starts
    t0 = time.perf_counter()
    start.set()
    results = [out.get() for _ in procs]
    elapsed = time.perf_counter() - t0
    for proc in procs:
        proc.join()
    reported = {user: ids for user, ids, _ in results}
    figures = check(store, reported, args.k)
    figures.update(clients=args.clients, k=args.k, pairs=n_pairs, seconds=round(elapsed, 3),
                   errors=sum(e for _, _, e in results),
                   labels_per_second=round(figures["committed"] / elapsed, 1),
                   per_client={user: len(ids) for user, ids in reported.items()},
                   machine=f"{platform.machine()} {mp.cpu_count()} cpus, python {platform.python_version()}")
    print(f"{figures['committed']} labels by {args.clients} concurrent processes in {elapsed:.2f} s: "
          f"{figures['labels_per_second']} labels/s")
    print(f"lost {figures['lost']} · duplicated {figures['duplicated']} · double assignments "
          f"{figures['double_assignments']} · pairs short of k {figures['pairs_short_of_k']} · "
          f"errors {figures['errors']}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(figures, indent=2) + "\n")
    bad = figures["lost"] + figures["duplicated"] + figures["double_assignments"] + figures["errors"]
    return 1 if bad or figures["committed"] != n_pairs * args.k else 0


if __name__ == "__main__":
    sys.exit(main())
