"""Fitting a method in a child process that a stop event can end.

crowd-kit's iterative fits (GLAD, MACE, M-MSR, KOS, Zero-based skill) run their loops in Python and check nothing
while they run: GLAD took 208 s on 11,000 answers of 2 classes (one task answered by 10,000 workers, 200 by five;
sizes its own bounds let through), and a cancel, the server's time limit or the time probe's limit could not end it
(attack round 21: a cancelled job held the server's one CPU slot past 4 minutes). A method marked ``isolated`` in
the registry is therefore fitted, when a stop event is given, in a child interpreter that the event kills: the
answers go to it pickled in a temporary file, the fitted aggregator comes back on its standard output. Starting
the child costs about a second (its imports), paid by those methods only; without a stop event (the command line,
the Python API) they are fitted in this process as before.

Run as ``python -m deem_core.methods.child FILE``: reads ``(method, data, options)`` pickled in FILE (a private
temporary file the parent made and removes) and writes ``("ok", model)`` or ``("error", exception)`` on its standard
output.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

__all__ = ["FitStopped", "fit_in_child", "POLL_SECONDS"]

#: how often the parent looks at the stop event while the child fits
POLL_SECONDS = 0.1


class FitStopped(RuntimeError):
    """The stop event ended the fit before it finished (nothing came back)."""


def _child_env() -> dict[str, str]:
    """The parent's environment with its import path, so that the child imports the same ``deem_core`` whether it
    was installed or found from the working directory (Streamlit puts the app's folder on ``sys.path``)."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p and os.path.isdir(p))
    return env


def fit_in_child(method: str, data: Any, options: dict[str, Any], stop_event: threading.Event,
                 poll: float = POLL_SECONDS) -> Any:
    """``registry.fit_method(method, data, **options)`` in a child process; FitStopped when ``stop_event`` is set
    before it ends (the child is killed), the child's exception when the fit failed, RuntimeError when the child
    ended without a result (killed from outside, out of memory)."""
    # the answers go in a file the child reads: given on its standard input, what a pipe's buffer did not take in
    # the first call of communicate() was never sent (a retry of communicate() with no input writes nothing more),
    # and every fit of more than ~64 KB of answers waited for its input until stopped (walkthrough 43)
    with tempfile.NamedTemporaryFile(prefix="deem-fit-", suffix=".pkl", delete=False) as handle:
        pickle.dump((method, data, dict(options)), handle, protocol=pickle.HIGHEST_PROTOCOL)
        given = handle.name
    try:
        proc = subprocess.Popen([sys.executable, "-m", "deem_core.methods.child", given], stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_child_env())
        try:
            while True:
                if stop_event.is_set():
                    raise FitStopped(f"{method}: stopped before its fit ended")
                try:
                    out, err = proc.communicate(timeout=poll)
                    break
                except subprocess.TimeoutExpired:
                    continue  # (a retry keeps what was read so far)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    finally:
        with contextlib.suppress(FileNotFoundError):  # (the child removes it once read)
            os.unlink(given)
    try:
        status, value = pickle.loads(out)  # noqa: S301 - our own child's answer on a pipe only it writes
    except Exception:  # noqa: BLE001 - no answer: the child died (killed, out of memory, an import failed)
        tail = err.decode("utf-8", "replace").strip().splitlines()[-1:] if err else []
        raise RuntimeError(f"{method}: its fit ended without a result (exit status {proc.returncode}"
                           + (f": {tail[0][:300]}" if tail else "") + ")") from None
    if status == "error":
        raise value
    return value


def _orphaned_exit(parent: int, every: float = 1.0) -> None:
    """Ends this process once its parent is gone (a server killed or restarted mid-fit left its GLAD running on,
    holding a core, with nobody to read the result)."""
    while True:
        time.sleep(every)
        if os.getppid() != parent:
            os._exit(3)


def _main() -> int:
    threading.Thread(target=_orphaned_exit, args=(os.getppid(),), daemon=True).start()
    with open(sys.argv[1], "rb") as handle:  # written by fit_in_child, our parent, for this child only
        method, data, options = pickle.load(handle)  # noqa: S301
    # removed once read: a parent killed mid-fit cannot remove it (a test's killed parent left one per run)
    with contextlib.suppress(OSError):
        os.unlink(sys.argv[1])
    from deem_core.methods.registry import fit_method  # noqa: PLC0415

    try:
        answer: tuple[str, Any] = ("ok", fit_method(method, data, **options))
    except Exception as exc:  # noqa: BLE001 - the parent raises it
        answer = ("error", exc)
    try:
        payload = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as exc:  # noqa: BLE001 - what cannot be pickled goes back in words
        status, value = answer
        said = (f"{type(value).__name__}: {value}" if status == "error" else
                f"the fitted model could not be sent back ({type(exc).__name__}: {exc})")
        payload = pickle.dumps(("error", RuntimeError(f"{method}: {said}")))
    sys.stdout.buffer.write(payload)
    sys.stdout.buffer.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_main())
