"""The server's log is bounded: a client's words in Streamlit's log lines are cut, and a call site a client can make
log at will writes a burst, then one line a second (attack round 34: 60 messages carrying 2 MB file ids grew the log
by 240 MB in two seconds)."""

from __future__ import annotations

import io
import logging

from deem_studio.server_log import BoundedLog, install_log_bounds


def _logger(name: str, bounds: BoundedLog) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(bounds)
    logger = logging.getLogger(name)
    logger.handlers, logger.propagate = [handler], False
    return logger, out


def test_a_long_message_and_its_traceback_are_cut_and_control_characters_escaped():
    logger, out = _logger("test.bounded.long", BoundedLog(max_chars=1000, max_trace_chars=4000))
    huge = "C" * 2_000_000
    logger.warning("Rejecting backend operation request %s", huge + "\x1b[2J")
    try:
        raise KeyError(huge)
    except KeyError:
        logger.exception("file %s not found", huge)
    text = out.getvalue()
    assert len(text) < 8_000, len(text)
    assert "characters more, not logged" in text and "characters not logged" in text
    assert "\x1b" not in text and "Traceback" in text and "KeyError" in text


def test_one_call_site_writes_a_burst_then_one_line_a_second_and_says_how_many_it_left_out():
    now = [100.0]
    logger, out = _logger("test.bounded.rate", BoundedLog(burst=10, seconds=1.0, clock=lambda: now[0]))

    def one_site(i: int) -> None:
        logger.warning("unknown message %d", i)

    for i in range(500):
        one_site(i)
    assert out.getvalue().count("\n") == 10
    logger.warning("another site")  # (its own call site: not held by the first one's pace)
    assert out.getvalue().count("\n") == 11
    now[0] += 1.0
    for i in range(50):
        one_site(i)
    lines = out.getvalue().splitlines()
    assert len(lines) == 12 and lines[-1] == "unknown message 0 (490 more such lines since the last one, not logged)"


def test_every_streamlit_logger_made_before_or_after_is_bounded():
    from streamlit import logger as st_logger

    before = st_logger.get_logger("streamlit.runtime.app_session")
    bounds = install_log_bounds()
    after = st_logger.get_logger("streamlit.test_made_after_the_bounds")
    for logger in (before, after):
        assert logger.handlers and all(bounds in h.filters for h in logger.handlers), logger.name
    st_logger.update_formatter()  # (Streamlit replaces the handlers when its log format is set)
    assert all(bounds in h.filters for h in after.handlers)
    assert install_log_bounds() is bounds  # (once per process)


def test_the_engines_warnings_about_a_users_labels_stay_out_of_the_servers_log():
    """Attack round 41: each training wrote a LabelWarning quoting the file's and the workers' names to standard
    error, outside the log's bounds. In the server they are not written (a run keeps them in its messages); other
    warnings still are."""
    import warnings

    from deem_core.methods.deem import DependenceWarning, FallbackWarning, LabelWarning

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        install_log_bounds()
        warnings.warn("a.csv: 1 label(s) spelled in more than one way: 'w1'", LabelWarning)
        warnings.warn("the safety rule returned majority vote", FallbackWarning)
        warnings.warn("the labels follow a dependence cluster: w1, w2 agree ...", DependenceWarning)
        warnings.warn("something else", UserWarning)
    assert [str(w.message) for w in seen] == ["something else"]
