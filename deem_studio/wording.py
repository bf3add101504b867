"""What the pages say about runs, methods and numbers, in words: one wording each, shared by the Train, Results,
Runs, Data and Diagnostics pages and testable without Streamlit (nothing here draws; the pages show these strings
through :func:`pages.common.safe` where they quote a user's names)."""

from __future__ import annotations

import re
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from deem_core.data.text import counted, middle_cut, names_text, quoted_name, shortened  # noqa: F401 - counted: the pages'


def share_text(share: float) -> str:
    """A share (0..1) in percent with the digits a small one needs: a 60,000-task set of 3 answers a task showed a
    density of "0%" for 0.1% (walkthrough 58); a share below 100% never reads "100%"."""
    percent = 100.0 * float(share)
    if percent <= 0 or percent >= 100:
        return f"{percent:.0f}%"
    if percent >= 10:
        return f"{percent:.0f}%" if percent < 99.5 else f"{min(percent, 99.9):.1f}%"
    if percent >= 0.01:
        return f"{percent:.2g}%"
    return "under 0.01%"


def sentence(text: str) -> str:
    """``text`` with a capital first letter, as a notice opens ("loaded 3,000 answers ..." and "no run with id ..."
    opened in lower case beside every other notice; walkthrough 24). Its words are the app's own: a notice never
    opens with a user's name."""
    return text[:1].upper() + text[1:]


def fmt_lr(value: Any) -> str:
    """A learning rate as the pages write it (4 significant digits; what is no number as it is)."""
    try:
        return f"{float(value):.4g}"
    except (TypeError, ValueError):
        return str(value)


def out_of_range(label: str, value: float, low: float, high: float) -> str | None:
    """The sentence :func:`show_problems` shows for a box's value outside ``[low, high]``; None inside it."""
    if low <= value <= high:
        return None
    whole = all(float(v).is_integer() for v in (value, low, high))
    number = (lambda v: f"{int(v):,}") if whole else (lambda v: f"{v:g}")
    return f"{label}: {number(value)} is outside the range this page runs, {number(low)} to {number(high)}."


def without_gold(config: dict[str, Any]) -> dict[str, Any]:
    """A run's settings as a link's visitor may have them: without what names the owner's gold labels (the file's
    name and fingerprint; walkthrough 41)."""
    return {key: value for key, value in config.items() if not str(key).startswith("gold")}


def labels_from(entry: dict | None) -> str | None:
    """What a method's labels come from when they are not its own trained model's (a safety rule's reference, the
    Dawid-Skene fallback of a collapse, the other start), from its metrics in its run; None otherwise."""
    return ((entry or {}).get("selection") or {}).get("fallback") or None


def download_stem(run_id: str, method: str, entry: dict | None) -> str:
    """The start of a method's download file names: ``deem_<run>_<method>``, then ``_fallback`` when its labels are
    a fallback's (the files said "deem" for cluster-weighted Dawid-Skene's labels; walkthrough, tenth session)."""
    return f"deem_{run_id}_{method}" + ("_fallback" if labels_from(entry) else "")


def gold_count(metrics: dict) -> int | None:
    """The number of tasks a run's accuracies were measured on (None when unknown or not one number)."""
    counts = {int(e["gold_tasks"]) for e in metrics.values()
              if isinstance(e, dict) and isinstance(e.get("gold_tasks"), (int, float))}
    return counts.pop() if len(counts) == 1 else None


def method_label(method: str, returned: str | None) -> str:
    """A method's display name, saying whose labels they are when the safety rule returned a reference's
    ("DEEM (labels from cluster-weighted Dawid-Skene)"): the one wording of Results, Train, Runs and Diagnostics."""
    from deem_studio.jobs import method_name  # noqa: PLC0415

    return method_name(method) + (f" (labels from {returned})" if returned else "")


def labelled_method_name(method: str, entry: dict | None) -> str:
    """:func:`method_label` from the method's metrics in its run (``entry``)."""
    from deem_core.analysis.selection import safety_rule_reference  # noqa: PLC0415

    return method_label(method, safety_rule_reference(((entry or {}).get("selection") or {}).get("fallback")))


def gold_scored(metrics: dict, config: dict | None = None) -> str:
    """On how many tasks a run's accuracies were measured, in words ("on the 20 tasks with a gold label"): an
    export's few golden cells read as a perfect score without it (walkthrough 22: 1.0000 on 20 of 400 tasks). With
    the run's ``config``: that the trained methods were fitted to those labels when it gave them a gold-label weight
    (walkthrough 47: DEEM read 0.9560 on the labels it trained with, the best of the session, and 94.65% on the
    2,000 tasks it did not see, below the default's 95.20)."""
    n = gold_count(metrics)
    if n is None:
        return ""
    said = f"on the {n:,} task{'s' if n != 1 else ''} with a gold label"
    try:
        weight = float((config or {}).get("supervised_weight") or 0.0)
    except (TypeError, ValueError):
        weight = 0.0
    from deem_core.methods import registry  # noqa: PLC0415
    from deem_studio.jobs import method_name  # noqa: PLC0415

    from deem_core.analysis.selection import safety_rule_reference  # noqa: PLC0415

    fitted = [m for m in metrics if m in registry.METHODS and registry.get_method(m).uses_gold]
    # a method whose labels the safety rule took from a reference: that reference used no gold label (it read
    # "DEEM trained with these gold labels" beside cluster-weighted Dawid-Skene's labels)
    returned = {m: safety_rule_reference(labels_from(metrics[m])) for m in fitted}
    trained = [m for m in fitted if not returned[m]]
    notes = []
    if weight > 0 and trained:
        # (half of them train, half check: "trained with these gold labels" was half true; walkthrough 60)
        notes.append(f"{' and '.join(method_name(m) for m in trained)} trained with half of these gold labels and "
                     f"{'was' if len(trained) == 1 else 'were'} checked on the other half, gold-label weight "
                     f"{weight:g}: on them {'its' if len(trained) == 1 else 'their'} accuracy is not a test of "
                     f"unseen tasks")
    if weight > 0:
        notes.extend(f"{method_name(m)}'s labels come from {returned[m]}, which used none of them; the safety rule "
                     f"checked it on half of them" for m in fitted if returned[m])
    if (config or {}).get("gold_control") is True:  # (said on the Data page only; walkthrough 82)
        from deem_core.data.formats.dialects import CONTROL_TASKS  # noqa: PLC0415

        notes.append(f"they are {CONTROL_TASKS}")
    accuracies = [float(e["accuracy"]) for e in metrics.values()
                  if isinstance(e, dict) and isinstance(e.get("accuracy"), (int, float))]
    spread = gold_spread(accuracies, n)
    # (after a semicolon, not in parentheses: Results puts the whole in parentheses, and "(on the 120 tasks with a gold
    # label (DEEM's labels come ... half of them)): ..." read as nested; walkthrough 62)
    return "; ".join([said, *notes, *([spread] if spread else [])])


#: the widest 95% interval of an accuracy (half its width) below which how many gold tasks scored it goes unsaid
GOLD_SPREAD_SAID = 0.01


def tie_luck_sentence(metrics: dict) -> str:
    """Beside the accuracies against gold: how much of majority vote's its tie rule's class order won on the gold
    tasks that are its ties ("" when none is, or the run's record of it is not readable). Majority vote led DEEM by
    0.01 on 80 gold tasks where its order won 9 of 12 ties, said nowhere beside the accuracies (walkthrough 82)."""
    from deem_core.analysis.scoring import tie_luck_text  # noqa: PLC0415

    entry = metrics.get("mv") if isinstance(metrics, dict) else None
    luck = entry.get("gold_ties") if isinstance(entry, dict) else None
    try:
        n = int(entry["gold_tasks"]) if isinstance(luck, dict) else 0
        return sentence(tie_luck_text(luck, n)) + "." if n > 0 and int(luck["ties"]) > 0 else ""
    except (KeyError, TypeError, ValueError, OverflowError):  # a run folder edited by hand: said nowhere
        return ""


def gold_margins(accuracies: Sequence[float], n: int | Sequence[int]) -> tuple[float, float] | None:
    """How far below and above themselves accuracies measured on ``n`` gold tasks (one count, or one per accuracy:
    methods scored on different tasks) may lie at 95% confidence, the widest of each side among them, or None where
    every interval's half width is within :data:`GOLD_SPREAD_SAID` (or none is a number). Wilson's interval is
    lopsided near 0 and 1 (0.96 on 50 tasks: 0.865-0.989), which one "±" hid (walkthrough 80)."""
    from deem_core.analysis.scoring import accuracy_interval  # noqa: PLC0415

    counts = [int(n)] * len(accuracies) if isinstance(n, (int, np.integer)) else [int(c) for c in n]
    bounds = [(a, *accuracy_interval(a, c)) for a, c in zip(accuracies, counts)]
    bounds = [(a, low, high) for a, low, high in bounds if high == high]
    if not bounds or max((high - low) / 2 for _, low, high in bounds) < GOLD_SPREAD_SAID:
        return None
    # (not below 0: a bound a hair inside an accuracy of 1 read "+-0.00"; walkthrough 94)
    return max(0.0, max(a - low for a, low, _ in bounds)), max(0.0, max(high - a for a, _, high in bounds))


def gold_margin_text(margins: tuple[float, float]) -> str:
    """"±0.10" where both sides round alike, else "−0.10/+0.04" (:func:`gold_margins`)."""
    below, above = (f"{m:.2f}" for m in margins)
    return f"±{below}" if below == above else f"−{below}/+{above}"


def gold_spread(accuracies: Sequence[float], n: int | Sequence[int]) -> str:
    """How far accuracies measured on ``n`` gold tasks can be off (:func:`gold_margins`), or "": 0.8167 on 60
    gold tasks read to four decimals as a measured fact, where all 1,200 tasks gave 0.7667 (walkthrough 79)."""
    margins = gold_margins(accuracies, n)
    if margins is None:
        return ""
    below, above = (f"{m:.2f}" for m in margins)
    known = (f"to about ±{below}" if below == above else
             f"to within about {below} below and {above} above")  # (lopsided near 1; walkthrough 80)
    # (no brackets: Results puts the whole of gold_scored in brackets; walkthrough 62)
    one = isinstance(n, (int, np.integer)) and int(n) == 1  # ("the 1 task ...; on that many tasks"; walkthrough 96)
    # the widest of the methods' intervals on each side: one nearer 1 is known more closely (walkthrough 105 read
    # majority vote's "0.08 below" as DEEM's, whose 0.950 on 120 tasks is within 0.055)
    # (no parenthesis: Results puts the whole in one)
    widest = " at worst" if len(accuracies) > 1 else ""
    return (f"on {'one task' if one else 'that many tasks'} each accuracy is known {known} at 95% confidence{widest}, "
            f"so methods closer than that may not differ")


def model_version(method: str, config: Any, entry: dict, fallback: str | None, run_id: str) -> str:
    """Label Studio's ``model_version`` of a run's ``method`` labels: the method and the settings it was trained
    with (``entry``: its metrics; ``fallback``: the reference whose labels these are, if any)."""
    from deem_core.data.formats.writers import model_version as version_text  # noqa: PLC0415
    from deem_core.methods.registry import display_name  # noqa: PLC0415

    keys = ("n_layers", "layers", "epochs", "lr", "init", "n_seeds", "seeds", "seed", "supervised_weight")
    # (the words of the deem command's file: "layers", "seeds"; the weight was not said, walkthrough 62)
    names = {"n_layers": "layers", "n_seeds": "seeds", "supervised_weight": "gold weight"}
    shown = dict(config) if isinstance(config, dict) else {}
    used = entry.get("layers")
    if fallback and "n_layers" in shown:  # a reference's labels have no layers ("n_layers 1" said; walkthrough 62)
        shown["n_layers"] = f"{shown['n_layers']} → none"
    elif shown.get("n_layers") == "auto" and used is not None:  # the depth chosen ("n_layers auto"; walkthrough 37)
        shown["n_layers"] = f"auto → {used}"
    done = entry.get("epochs")
    if not fallback and done is not None and shown.get("epochs") is not None and int(done) != int(shown["epochs"]):
        # the epochs trained of those asked (a run cancelled after 3 of 100 epochs said "epochs 100"; walkthrough 114)
        shown["epochs"] = f"{int(done):,} of {int(shown['epochs']):,}"
    return version_text(display_name(method), {names.get(k, k): shown[k] for k in keys if k in shown}, fallback,
                        run_id)


#: the least share of a method's wrong gold labels at confidence 0.99 or more for its high confidences to be said to
#: hide errors from "Least confident first" (1 of 1,279 was; walkthrough 129)
FEW_CONFIDENT_WRONG = 0.02


def calibration_sentence(name: str, held: dict) -> str:
    """What the Results page says of a method's confidences measured on gold labels (``held``:
    :func:`deem_core.analysis.scoring.calibration`). Read high with none of its wrong labels at 0.99 or more, it said
    "(0 of its 23 wrong labels there have confidence 0.99 or more), so ... can miss errors" (walkthrough 62)."""
    # ("DEEM (labels from cluster-weighted Dawid-Skene)'s mean confidence" read awkwardly; walkthrough 63)
    said = (f"On the {counted(held['tasks'], 'gold task')}, the mean confidence of {name} is {held['mean_confidence']:.3f} "
            f"and its accuracy {held['accuracy']:.3f}")
    if held["mean_confidence"] - held["accuracy"] <= 0.05:
        return said + "."
    if held["wrong_confident"] and held["wrong_confident"] >= FEW_CONFIDENT_WRONG * max(1, held["wrong"]):
        verb = "has" if held["wrong_confident"] == 1 else "have"  # ("1 of its 14 wrong labels ... have"; walkthrough 65)
        return said + (f": its confidences read high ({held['wrong_confident']:,} of its {held['wrong']:,} wrong "
                       f"labels there {verb} confidence 0.99 or more), so \"Least confident first\" below can miss "
                       f"errors.")
    # (a few of many: "its confidences read high (1 of its 1,279 wrong labels there has confidence 0.99 or more), so
    # ... can miss errors" quoted evidence against itself; walkthrough 129)
    few = (f"only {held['wrong_confident']:,} of its {held['wrong']:,} wrong labels there "
           f"{'has' if held['wrong_confident'] == 1 else 'have'}" if held["wrong_confident"] else
           f"none of its {held['wrong']:,} wrong labels there has")
    return said + (f": its confidences read high, though {few} confidence 0.99 or more; \"Least confident first\" "
                   f"below may still list right labels before wrong ones.")


def importance_caption(table: Any, column: str, cluster_weighted: bool = False, flagged: bool = False) -> str:
    """What the Diagnostics page's worker-importance table and chart say, and what they do not: the two measures, and
    for the measure ``column`` the chart shows, the workers below 0 (named) and why (a negative importance went
    unexplained on the page: walkthrough 70). ``table``: the importance rows (``worker``, ``subset`` and ``column``);
    ``cluster_weighted``: the labels are a cluster-weighted reference's; ``flagged``: a worker is flagged worse than
    chance. Quotes worker names: show it through ``pages.common.safe``."""
    text = ("importance: how much the probability of the class decided for a task falls when the worker's answer "
            "is left out (near 0 for everyone when many workers agree); importance log odds: the same fall in "
            "log-odds, about the worker's vote weight, which does not flatten out: read it to rank workers by how "
            "much the labels lean on them. That is the weight the model gives a worker's answers, not how often the "
            "worker is right (Worker quality says that): the two can rank workers differently.")
    if cluster_weighted:
        text += (" These labels count each group of copying workers once, so each copy weighs a share of one worker "
                 "and scores low.")
    if flagged:  # (two adversarial workers scored near the honest ones without a word; walkthrough 64)
        text += (" A worker flagged “worse than chance” (Worker quality) can score high here: an answer that is "
                 "reliably wrong tells the classes apart as a right one does, read through that worker's confusions.")
    if column in getattr(table, "columns", ()):
        values = table[column].astype(float)
        # below 0 as the table shows it (three decimals: "-0.000" was named below 0; walkthrough 102)
        # each name cut before it is quoted (cut after, a long one lost its closing quote; walkthrough 112)
        below = list(dict.fromkeys(repr(middle_cut(str(w), 40)) for w in table.loc[values < -5e-4, "worker"]))
        if below:
            text += (f" Below 0 ({names_text(below, 5, longest=400, quote=False)}): leaving that worker's answer out makes "
                     f"the class decided more probable, on average over its tasks: as the model reads them, its answers "
                     f"count against the labels decided more than for them.")
    return text


#: past this many workers whose names hold a column's name, :func:`headed_notes` leaves the notes as they are (200,000
#: such names took 1.8 s a page's run to look for in ten notes)
MOST_NAMES_HOLDING_COLUMNS = 1_000


def headed_notes(notes: Sequence[str], columns: Iterable[str], names: Iterable[Any] = ()) -> list[str]:
    """``notes`` with each column name they hold written as a grid heads it (``dependent_with`` as "dependent with";
    walkthrough 35), but never inside one of ``names`` (the workers) a note quotes: a worker named ``n_labels`` was
    shown "n labels" in the note beside its row (walkthrough 91). A name is kept whole and cut as a list cuts it (40
    characters) or quoted. A worker named as a column is, where the note names that column too, kept as it is there
    (the file's name, as the CSV heads it): a name is never rewritten. Past :data:`MOST_NAMES_HOLDING_COLUMNS` such
    names the notes keep the files' column names."""
    columns = sorted({str(c) for c in columns if "_" in str(c)}, key=len, reverse=True)
    if not columns:
        return list(notes)
    names = pd.Series(list(names), dtype=object).astype(str)
    holding = np.zeros(len(names), dtype=bool)
    for column in columns:  # (vectorised: a run's workers can be many)
        holding |= names.str.contains(column, regex=False).to_numpy(dtype=bool)
    if holding.sum() > MOST_NAMES_HOLDING_COLUMNS:  # (each looked for in each note: the files' names kept instead)
        return list(notes)
    # each as a note may write it: whole, cut as a list cuts it, and in “ ” with the marks inside doubled (read 44)
    risky = {form for name in names[holding] for cut in (name, shortened(name, 40)) for form in (cut, quoted_name(cut))}
    headed = []
    for note in notes:
        kept = sorted((form for form in risky if form and form in note), key=len, reverse=True)
        pieces = re.split("(" + "|".join(map(re.escape, kept)) + ")", note) if kept else [note]
        for index in range(0, len(pieces), 2):  # the even pieces lie between the names kept
            for column in columns:
                pieces[index] = pieces[index].replace(column, column.replace("_", " "))
        headed.append("".join(pieces))
    return headed
