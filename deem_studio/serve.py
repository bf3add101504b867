"""``deem-studio``: start the dashboard (``streamlit run app.py``) with the server's connection limits in place
before it accepts its first connection.

``streamlit run app.py`` runs ``app.py`` only when a browser opens a page, so the limits it installs
(:func:`deem_studio.uploads.install_connection_limit`) counted no connection opened before that: on a freshly
started server one address held 300 websockets, each with an unfinished 3 MB message (78 MB -> 984 MB; attack
round 10). Here Streamlit's websocket route is wrapped as the server builds it. Arguments are Streamlit's options
(``deem-studio --server.port 8502``); the working directory becomes the project's, whose ``.streamlit/config.toml``
holds the server's settings.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Sequence

ROOT = Path(__file__).resolve().parents[1]


def install_before_serving() -> bool:
    """Wrap Streamlit's websocket route in the connection limit as the server creates it (once per process);
    False when this Streamlit builds its routes elsewhere (the first page then installs the limit)."""
    from deem_studio import uploads
    from deem_studio.server_log import install_log_bounds

    install_log_bounds()  # (Streamlit logs a client's words: bounded from the first connection; attack round 34)
    uploads.install_message_kinds()  # (a first connection's git-info and upload-address requests: attack round 64)
    no_legacy_pages()
    try:
        from streamlit.web.server.starlette import starlette_app
    except ImportError:
        return False
    original = getattr(starlette_app, "create_websocket_routes", None)
    if original is None or getattr(original, "_deem_limited", False):
        return original is not None

    def limited(runtime: Any, base_url: Any) -> list:
        routes = original(runtime, base_url)
        uploads.install_connection_limit(routes=routes)
        return routes

    limited._deem_limited = True  # type: ignore[attr-defined]
    starlette_app.create_websocket_routes = limited
    install_http_limit_on_load()
    return True


def no_legacy_pages() -> None:
    """Start the server out of Streamlit's legacy multipage mode (what the first ``st.navigation`` call does for the
    whole server; pages/shell.py): with a ``pages`` folder beside ``app.py``, a fresh server's first page view was
    sent the folder's module names ("app, common, data, ...") as its navigation, shown until ``app.py`` replaced
    them (2.4 s on a loaded machine; walkthrough 100). Every script run then starts in ``app.py``."""
    try:
        from streamlit.runtime.pages_manager import PagesManager
    except ImportError:
        return
    PagesManager.uses_pages_directory = False


def install_http_limit_on_load() -> bool:
    """Have the server's uvicorn config, as it loads, make its HTTP connections counted per address and timed
    for their request head (:class:`deem_studio.uploads.HttpConnectionLimit`; attack round 30: 20,000 unfinished
    request heads took the server to its descriptor limit before any page ran)."""
    from deem_studio import uploads

    try:
        import uvicorn
    except ImportError:
        return False
    load = uvicorn.Config.load
    if getattr(load, "_deem_limited", False):
        return True

    def limited_load(self: Any) -> None:
        load(self)
        uploads.install_http_connection_limit([self])

    limited_load._deem_limited = True  # type: ignore[attr-defined]
    uvicorn.Config.load = limited_load
    return True


AGENT_API = "server.enableAgentApi"
AGENT_API_REFUSED = (f"Streamlit's agent API ({AGENT_API}) is not supported: its sessions open over HTTP, outside the "
                     f"limits this server keeps per network address (connections, jobs, runs); start without it")


def agent_api_asked(args: Sequence[str], environ: Any = None) -> bool:
    """Whether Streamlit's options on the command line or in the environment turn its agent API on (the project's
    ``.streamlit/config.toml`` leaves it off; the app refuses a session too when it is on by any other way)."""
    environ = os.environ if environ is None else environ
    value = environ.get("STREAMLIT_SERVER_ENABLE_AGENT_API")
    args = list(args)
    for i, arg in enumerate(args):
        if arg == f"--{AGENT_API}":
            value = args[i + 1] if i + 1 < len(args) and not args[i + 1].startswith("--") else "true"
        elif arg.startswith(f"--{AGENT_API}="):
            value = arg.split("=", 1)[1]
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def usage() -> str:
    """``deem-studio --help``: what it starts, where runs go and the settings it reads (it printed Streamlit's own
    help, "Usage: streamlit run [OPTIONS] TARGET", with no word of DEEM Studio; walkthrough 79)."""
    from deem_studio.runs import default_runs_dir
    from deem_studio.settings import SETTINGS

    runs = default_runs_dir()
    where = (f"{runs.resolve()} (DEEM_RUNS_DIR; a relative one is taken from the folder deem-studio is started in)"
             if os.environ.get("DEEM_RUNS_DIR") else f"{ROOT / runs} (set DEEM_RUNS_DIR to keep them elsewhere)")
    lines = ["usage: deem-studio [STREAMLIT OPTIONS]",
             "",
             "Start the DEEM Studio dashboard (http://localhost:8501 unless --server.port says otherwise), with the",
             "server's connection limits in place from its first connection. Options are Streamlit's and pass through,",
             "e.g. deem-studio --server.port 8502 --server.headless true (all of them: streamlit run --help).",
             "",
             f"Runs (settings, data, curves, labels, models) are kept in {where}.",
             "",
             "Limits read from the environment (a plain number; bytes may end in K, M, G or T):"]
    width = max(len(name) for name in SETTINGS)
    lines += [f"  {name:<{width}}  {setting.what}" for name, setting in SETTINGS.items()]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    app = ROOT / "app.py"
    if not app.is_file():
        print(f"error: {app} not found: deem-studio runs from a checkout of DEEM Studio (pip install -e .)",
              file=sys.stderr)
        return 2
    from deem_studio.settings import check_environment

    problems = check_environment()  # a bad limit is refused here, not lifted or found by the first visitor
    args = sys.argv[1:] if argv is None else list(argv)
    if any(arg in ("-h", "--help") for arg in args):
        try:
            print(usage(), flush=True)
        except BrokenPipeError:  # (``deem-studio --help | head`` ended in a traceback; walkthrough 117)
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (nothing more reaches the closed pipe)
        return 0
    if agent_api_asked(args):  # (attack round 16: it opened sessions outside the connection limit)
        problems.append(AGENT_API_REFUSED)
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 2
    runs = os.environ.get("DEEM_RUNS_DIR")
    if runs and not Path(runs).is_absolute():  # (taken from the project's folder after the change of folder below,
        # not the one the user started in; walkthrough 79)
        os.environ["DEEM_RUNS_DIR"] = str(Path(runs).resolve())
    os.chdir(ROOT)
    install_before_serving()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(app), *args]
    try:
        cli.main(prog_name="streamlit")
    except SystemExit as stop:
        return int(stop.code or 0) if not isinstance(stop.code, str) else 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
