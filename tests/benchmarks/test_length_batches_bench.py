"""benchmarks/length_batches.py's padding arithmetic: real-token shares of hand-made batches and of one epoch."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from length_batches import padding_report, real_fraction  # noqa: E402


def test_real_fraction_counts_padding_to_each_batch_longest_row():
    lengths = [10, 30, 20, 20]
    assert real_fraction(lengths, [[0, 1], [2, 3]]) == round(80 / (60 + 40), 3)
    assert real_fraction(lengths, [[0], [1], [2], [3]]) == 1.0


def test_padding_report_grouped_beats_random_and_pairs_stay_together():
    lengths = [200 if i % 4 == 0 else 20 for i in range(400)]
    report = padding_report(lengths, batch_size=8)
    assert report["grouped"] > 0.95 > 0.5 > report["random"]  # one batch mixes the last long rows with short ones
    pairs = [n for i in range(200) for n in ((200, 190) if i % 4 == 0 else (20, 18))]  # chosen, rejected
    paired = padding_report(pairs, batch_size=8, rows_per_item=2)
    assert paired["grouped"] > 0.85 > 0.5 > paired["random"]  # within a pair the two sides still differ
