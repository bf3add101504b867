"""Cost of writing one method's label file as ``deem aggregate`` and the dashboard's Labels CSV write it: the
majority columns (``deem_core.methods.registry.with_majority``) and the spreadsheet-safe CSV
(``deem_core.data.export.to_safe_csv``).

Attack round 13 measured ``deem aggregate --method mv`` after the two majority columns were added: +391 MB peak on
100,000 tasks x 500 classes (majority vote's whole table of vote shares built again for its labels) and +5 s on
1,000,000 tasks x 2 classes (the vote fitted again, a Python ``str()`` loop, and every text cell neutralised one by
one). Target: the label file with the two columns costs no more time or memory than the file without them did.

Each row: the data (tasks x classes), the step, the way it is done, seconds, and the peak of memory Python allocated
during the step (tracemalloc, in a second run of the step; numpy and pandas report their arrays to it; not traced for
the CSV, whose millions of small strings tracemalloc slows tenfold).

Usage::

    python benchmarks/label_file.py                       # 1,000,000 x 2 and 100,000 x 500
    python benchmarks/label_file.py --sizes 100000x3
"""

from __future__ import annotations

import argparse
import os
import time
import tracemalloc

import numpy as np
import pandas as pd

from deem_core.data import export
from deem_core.data.annotations import AnnotationSet
from deem_core.methods import registry


def _measure(step, memory: bool = True):
    """``step()``'s result, its seconds (a run without tracing) and the peak Python allocated during a second, traced
    run (tracemalloc slows object-heavy steps tenfold: their seconds come from the untraced run); None: not traced."""
    started = time.perf_counter()
    result = step()
    seconds = time.perf_counter() - started
    if not memory:
        return result, seconds, None
    del result
    tracemalloc.start()
    result = step()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return result, seconds, peak


def _cell_by_cell(frame: pd.DataFrame) -> str:
    """The CSV as written before (every text cell neutralised one by one)."""
    out = frame.reset_index()
    for column in out.columns:
        if not (pd.api.types.is_numeric_dtype(out[column]) or pd.api.types.is_bool_dtype(out[column])):
            out[column] = out[column].map(export.neutralise_cell)
    return out.to_csv(index=False, lineterminator="\r\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", nargs="+", default=["1000000x2", "100000x500"], help="TASKSxCLASSES")
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    print(f"# one method's label file; {args.workers} answers per task; load average {os.getloadavg()[0]:.1f}")
    print(f"{'data':>12}  {'step':<16} {'how':<36} {'seconds':>8}  {'peak MiB':>8}")
    for size in args.sizes:
        n, k = (int(part) for part in size.lower().split("x"))
        rng = np.random.default_rng(0)
        truth = rng.integers(0, k, n)
        answers = np.where(rng.random((n, args.workers)) < 0.7, truth[:, None], rng.integers(0, k, (n, args.workers)))
        frame = pd.DataFrame({"task": np.repeat(np.arange(n), args.workers),
                              "worker": np.tile([f"w{j}" for j in range(args.workers)], n),
                              "label": np.array([f"c{c}" for c in range(k)], dtype=object)[answers.ravel()]})
        data = AnnotationSet.from_long(frame)
        del frame, answers
        table = registry.make_aggregator("mv").fit(data).results_frame()

        def row(step: str, how: str, seconds: float, peak: int | None) -> None:
            shown = "" if peak is None else f"{peak / 2**20:.0f}"
            print(f"{size:>12}  {step:<16} {how:<36} {seconds:8.2f}  {shown:>8}")

        _, s, p = _measure(lambda: registry.make_aggregator("mv").fit(data).results_frame()["label"])
        row("majority labels", "vote-share table, then labels", s, p)
        reference, s, p = _measure(lambda: registry.majority_reference(data))
        row("majority labels", "labels only (majority_reference)", s, p)
        _, s, p = _measure(lambda: registry.with_majority(table, reference=reference))
        row("two columns", "with_majority, reference given", s, p)
        _, s, p = _measure(lambda: registry.with_majority(table, method="mv"))
        row("two columns", "with_majority, mv's own labels", s, p)
        full = registry.with_majority(table, method="mv")
        before, s, p = _measure(lambda: _cell_by_cell(full), memory=False)
        row("safe CSV", "every text cell neutralised", s, p)
        after, s, p = _measure(lambda: export.to_safe_csv(full), memory=False)
        row("safe CSV", "once per distinct text (to_safe_csv)", s, p)
        assert before == after, "the two ways wrote different files"
        _, s, p = _measure(lambda: export.to_safe_csv(table), memory=False)
        row("safe CSV", "without the two columns", s, p)


if __name__ == "__main__":
    main()
