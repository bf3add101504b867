"""``streamlit run`` with a pause after every epoch of the dashboard's jobs, for browser tests that must act on a
job while it runs (refresh mid-run, read-only link to a running job, cancel).

Without it such a test races the machine: a training that ran ~20 s on the 2-core box ended in under 5 s on
the CI machine, before the test could refresh the page. The pause gives each job a floor on its duration on any
machine; everything else is the real server. Test-only: the product never reads ``DEEM_TEST_EPOCH_PAUSE_S``.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from streamlit.web import cli  # noqa: E402

from deem_studio import jobs  # noqa: E402

PAUSE_S = float(os.environ["DEEM_TEST_EPOCH_PAUSE_S"])
_original = jobs._ProgressCallback.on_epoch_end


def _paced(self: jobs._ProgressCallback, epoch: int, logs: list) -> bool:
    time.sleep(PAUSE_S)
    return _original(self, epoch, logs)


jobs._ProgressCallback.on_epoch_end = _paced

if __name__ == "__main__":
    sys.argv = ["streamlit", *sys.argv[1:]]
    sys.exit(cli.main())
