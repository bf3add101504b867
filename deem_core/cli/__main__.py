"""``python -m deem_core.cli``: the ``deem`` command (``deem_core.cli.main``) without its installed script."""

import sys

from deem_core.cli import main

if __name__ == "__main__":
    sys.exit(main())
