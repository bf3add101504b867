"""The search for dependence clusters (``deem_core/methods/clusters.py``): its work, time and tests on the
validation sets, and on the shapes attack round 51 found unbounded, with how fast a cancel ends a default fit there.

Each row: the set's shape, the search's seconds, its work in the units of ``MAX_SEARCH_WORK`` (resample x task x
class^2), the tests run and the merges cut by the bound, the groups found; for the attack shapes also a default
``DEEM().fit`` cancelled (its stop event set) after ``CANCEL_AT`` seconds: when it returned, and the process's peak
memory so far; read 51's shapes of 500-1,000 classes, the search alone. Attack round 51 measured, before the bound and the stops: a cancel waited 535 s (200 workers x 5,000
tasks x 20 classes) and past 15 minutes with 3.3 GB (8 workers x 1,000 tasks x 300 classes).

    python benchmarks/cluster_search.py [--quick]
"""

from __future__ import annotations

import argparse
import resource
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import load_set, machine  # noqa: E402
from families import make_set  # noqa: E402

from deem_core import DEEM  # noqa: E402
from deem_core.data.annotations import AnnotationSet, as_annotation_set  # noqa: E402
from deem_core.methods import clusters as module  # noqa: E402

VALIDATION = ["mnist_like:0", "digits", "digits_experts", "experts:0", "tree3k", "groups:2", "copies:0", "trio:0",
              "apph:1", "spammers:0"]
#: (workers, tasks, classes): attack round 51's files, rebuilt (each answer right half the time, else a random class)
ATTACK_SHAPES = [(8, 100, 314), (8, 1000, 300), (200, 2000, 20), (200, 5000, 20)]
CANCEL_AT = 5.0
#: (workers, tasks, classes): read 51's and attack round 52's shapes, where every test passes the bound and the work
#: before the tests was uncounted (57-72 s at 1,000 classes; 201 s and 1.5 GB at 4,000): the search alone (a default
#: fit of that many classes is another matter)
SEARCH_ONLY_SHAPES = [(60, 2000, 500), (100, 3000, 1000), (200, 5000, 4000)]


def attack_set(workers: int, tasks: int, classes: int, seed: int = 0) -> AnnotationSet:
    rng = np.random.default_rng(seed)
    truth = rng.integers(classes, size=tasks)
    labels = np.column_stack([np.where(rng.random(tasks) < 0.5, truth, rng.integers(classes, size=tasks))
                              for _ in range(workers)])
    return AnnotationSet.from_dense(labels)


def search(data: AnnotationSet) -> tuple[float, float, module.DependenceClusters]:
    spent = []
    real = module._Work.take

    def take(self, cost):
        ok = real(self, cost)
        spent.append(cost if ok else 0.0)
        return ok

    module._Work.take = take
    try:
        started = time.perf_counter()
        found = module.find_dependence_clusters(data)
        return time.perf_counter() - started, sum(spent), found
    finally:
        module._Work.take = real


def peak_gb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="three validation sets and two attack shapes")
    args = parser.parse_args()
    sets = VALIDATION[:3] if args.quick else VALIDATION
    shapes = ATTACK_SHAPES[:2] if args.quick else ATTACK_SHAPES
    print(f"# python benchmarks/cluster_search.py{' --quick' if args.quick else ''}; {machine()}")
    print(f"# bound: MAX_SEARCH_WORK = {module.MAX_SEARCH_WORK:.3g} units; chunks of {module.BOOT_CHUNK_BYTES >> 20} MB")
    print()
    print(f"{'set':<22}{'shape':>18}{'seconds':>9}{'work':>10}{'tests':>7}{'cut':>6}{'groups':>8}")
    for name in sets:
        frame = make_set(name.split(":")[0], int(name.split(":")[1]))[0] if ":" in name else load_set(name)[0]
        data = as_annotation_set(frame)
        seconds, work, found = search(data)
        shape = f"{data.n_tasks}x{data.n_workers}x{data.n_classes}"
        print(f"{name:<22}{shape:>18}{seconds:>9.1f}{work:>10.3g}{len(found.tests):>7}{found.cut:>6}"
              f"{len(found.groups()):>8}", flush=True)
    print()
    print(f"{'attack shape':<22}{'shape':>18}{'seconds':>9}{'work':>10}{'tests':>7}{'cut':>6}{'groups':>8}"
          f"{'cancel at':>11}{'returned':>10}{'peak GB':>9}")
    for workers, tasks, classes in shapes:
        data = attack_set(workers, tasks, classes)
        seconds, work, found = search(data)
        stop = threading.Event()
        timer = threading.Timer(CANCEL_AT, stop.set)
        timer.start()
        started = time.perf_counter()
        DEEM(device="cpu").fit(data, stop_event=stop)
        returned = time.perf_counter() - started
        timer.cancel()
        shape = f"{tasks}x{workers}x{classes}"
        print(f"{'attack 51':<22}{shape:>18}{seconds:>9.1f}{work:>10.3g}{len(found.tests):>7}{found.cut:>6}"
              f"{len(found.groups()):>8}{CANCEL_AT:>10.0f}s{returned:>9.1f}s{peak_gb():>9.2f}", flush=True)
    for workers, tasks, classes in ([] if args.quick else SEARCH_ONLY_SHAPES):
        seconds, work, found = search(attack_set(workers, tasks, classes))
        shape = f"{tasks}x{workers}x{classes}"
        print(f"{'read 51/attack 52':<22}{shape:>18}{seconds:>9.1f}{work:>10.3g}{len(found.tests):>7}{found.cut:>6}"
              f"{len(found.groups()):>8}", flush=True)


if __name__ == "__main__":
    main()
