"""Fitting a method in a child process that a stop event can end.

crowd-kit's iterative fits (GLAD, MACE, M-MSR, KOS, Zero-based skill) run their loops in Python and check nothing
while they run: GLAD took 208 s on 11,000 answers of 2 classes (one task answered by 10,000 workers, 200 by five;
sizes its own bounds let through), and a cancel, the server's time limit or the time probe's limit could not end it
(attack round 21: a cancelled job held the server's one CPU slot past 4 minutes). A method marked ``isolated`` in
the registry is therefore fitted, when a stop event is given, in a child interpreter that the event kills: the
answers go to it pickled in a temporary file, the fitted aggregator comes back in another. Starting the child
costs about a second (its imports), paid by those methods only; without a stop event (the command line, the
Python API) they are fitted in this process as before.

The child is started as ``python -I -c CODE ANSWERS RESULT`` (``CODE`` puts this process's import path first and
calls ``_main``): it reads ``(method, data, options)`` pickled in ANSWERS (in a private folder the parent made and
removes) and writes ``("ok", model)`` or ``("error", exception)`` pickled to RESULT. Isolated mode (``-I``) keeps
the child from importing a ``sitecustomize`` or ``usercustomize`` module out of a folder on that path, or from
following the environment's ``PYTHON*`` variables, before its own code runs (any writable folder among the
server's import paths would have had its ``sitecustomize.py`` run in every child).
"""

from __future__ import annotations

import contextlib
import os
import pickle
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

__all__ = ["FitStopped", "fit_in_child", "time_in_child", "POLL_SECONDS"]

#: how often the parent looks at the stop event while the child fits
POLL_SECONDS = 0.1


class FitStopped(RuntimeError):
    """The stop event ended the fit before it finished (nothing came back)."""


def _child_command(answers: str, result: str) -> list[str]:
    """The child's command line: this process's import path given in the code, not in ``PYTHONPATH`` (ignored in
    isolated mode), so that the child imports the same ``deem_core`` whether it was installed or found from the
    working directory (Streamlit puts the app's folder on ``sys.path``)."""
    path = [p for p in sys.path if p and os.path.isdir(p)]
    code = (f"import sys; sys.path[:0] = {path!r}; "
            "from deem_core.methods.child import _main; sys.exit(_main())")
    return [sys.executable, "-I", "-c", code, answers, result]


def fit_in_child(method: str, data: Any, options: dict[str, Any], stop_event: threading.Event,
                 poll: float = POLL_SECONDS) -> Any:
    """``registry.fit_method(method, data, **options)`` in a child process; FitStopped when ``stop_event`` is set
    before it ends (the child is killed), the child's exception when the fit failed, RuntimeError when the child
    ended without a result (killed from outside, out of memory)."""
    return _in_child(("fit", method, data, dict(options)), method, stop_event, poll)


def time_in_child(methods: list[str], datasets: list[Any], options: dict[str, Any], stop_event: threading.Event,
                  poll: float = POLL_SECONDS) -> tuple[list[list[float]], float]:
    """Seconds each of ``methods`` takes to fit (and give its label table) on each of ``datasets``, all in one child
    process, and the seconds the child took in all: ``(seconds[dataset][method], wall)``. ``wall`` less the fits is
    what starting a child costs, which a job pays once for each such method. One child for every fit timed: a child
    each (two sizes x five methods) cost the time probe 20 s of starts alone, and the Train page gave no estimate
    (walkthrough 55). A fit that fails counts the time it took (it fails as quickly in the job)."""
    started = time.perf_counter()
    seconds = _in_child(("time", list(methods), list(datasets), dict(options)), "the timing of " + ", ".join(methods),
                        stop_event, poll)
    return seconds, time.perf_counter() - started


def _in_child(payload: tuple, what: str, stop_event: threading.Event, poll: float) -> Any:
    """Run ``payload`` (see :func:`_answer`) in a child process; its value, or the exception it raised. ``what``
    names it in messages."""
    # the answers go in a file the child reads: given on its standard input, what a pipe's buffer did not take in
    # the first call of communicate() was never sent (a retry of communicate() with no input writes nothing more),
    # and every fit of more than ~64 KB of answers waited for its input until stopped (walkthrough 43). The result
    # comes back in a file too: read from a pipe it was held twice here, as bytes and as the model (attack round 22:
    # an M-MSR fit of 40,000 tasks x 300 classes raised the server's memory by 549 MB, 281 MB fitted in-process)
    folder = tempfile.mkdtemp(prefix="deem-fit-")  # (only this user can read or write it)
    answers, result = os.path.join(folder, "answers.pkl"), os.path.join(folder, "result.pkl")
    try:
        with open(answers, "xb") as handle:
            pickle.dump(payload, handle, protocol=pickle.HIGHEST_PROTOCOL)
        proc = subprocess.Popen(_child_command(answers, result), stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            while True:
                if stop_event.is_set():
                    raise FitStopped(f"{what}: stopped before its fit ended")
                try:
                    _, err = proc.communicate(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    continue  # (a retry keeps what was read so far)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        try:
            if proc.returncode != 0:
                raise OSError  # (a result written in part by a child killed while writing it)
            with open(result, "rb") as handle:
                status, value = pickle.load(handle)  # noqa: S301 - our own child's answer in our private folder
        except Exception:  # noqa: BLE001 - no answer: the child died (killed, out of memory, an import failed)
            tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
            raise RuntimeError(f"{what}: its fit ended without a result (exit status {proc.returncode}"
                               + (f": {tail[0][:300]}" if tail else "") + ")") from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if status == "error":
        raise value
    return value


def _orphaned_exit(parent: int, folder: str, every: float = 1.0) -> None:
    """Ends this process once its parent is gone (a server killed or restarted mid-fit left its GLAD running on,
    holding a core, with nobody to read the result), removing the folder its parent can no longer remove."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            shutil.rmtree(folder, ignore_errors=True)
            os._exit(3)


def _main() -> int:
    answers, result = sys.argv[1], sys.argv[2]
    threading.Thread(target=_orphaned_exit, args=(os.getppid(), os.path.dirname(result)), daemon=True).start()
    with open(answers, "rb") as handle:  # written by _in_child, our parent, for this child only
        payload = pickle.load(handle)  # noqa: S301
    # removed once read: a parent killed mid-fit cannot remove it (a test's killed parent left one per run)
    with contextlib.suppress(OSError):
        os.unlink(answers)
    method = payload[1] if payload[0] == "fit" else "timing"
    try:
        answer: tuple[str, Any] = ("ok", _answer(payload))
    except Exception as exc:  # noqa: BLE001 - the parent raises it
        answer = ("error", exc)
    try:
        with open(result, "wb") as handle:
            pickle.dump(answer, handle, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - what cannot be pickled goes back in words
        status, value = answer
        said = (f"{type(value).__name__}: {value}" if status == "error" else
                f"the fitted model could not be sent back ({type(exc).__name__}: {exc})")
        with open(result, "wb") as handle:
            pickle.dump(("error", RuntimeError(f"{method}: {said}")), handle)
    return 0


def _answer(payload: tuple) -> Any:
    """``("fit", method, data, options)``: the fitted aggregator; ``("time", methods, datasets, options)``: the
    seconds of each fit (:func:`time_in_child`)."""
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    if payload[0] == "fit":
        _, method, data, options = payload
        return fit_method(method, data, **options)
    _, methods, datasets, options = payload
    # the libraries the fits import, imported before any fit is timed: a job's child imports them too, once, and
    # counted in the first fit they made the small sample look slower than the large one (GLAD 7.9 s on 60 tasks,
    # 1.1 s on 240)
    import crowdkit.aggregation  # noqa: F401, PLC0415
    seconds = []
    for data in datasets:
        row = []
        for method in methods:
            started = time.perf_counter()
            try:
                fit_method(method, data, **options).results_frame()
            except Exception:  # noqa: BLE001, S110 - timed as it is: it fails as quickly in the job
                pass
            row.append(time.perf_counter() - started)
        seconds.append(row)
    return seconds


if __name__ == "__main__":
    sys.exit(_main())
