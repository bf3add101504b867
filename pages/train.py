"""Train page: DEEM, iRBM and crowd-kit baselines in a background job; live progress; results side by side."""

from __future__ import annotations

from pages.shell import require_shell

require_shell()  # first, before the heavy imports below (pages/shell.py)

from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import plotly.express as px  # noqa: E402
import streamlit as st  # noqa: E402

from deem_core.analysis import agreement  # noqa: E402
from deem_core.analysis.selection import (MIN_HELDOUT, answers_to_choose, cluster_texts, followed_text,  # noqa: E402
                                          heldout_size, safety_rule_reference, selection_lines, selection_table)
from deem_core.data.annotations import DataError, label_doubts, left_out_notes  # noqa: E402
from deem_core.data.text import counted, shortened  # noqa: E402
from deem_core.model.training import MAX_LR, MAX_SEEDS, budget_text  # noqa: E402
from deem_core.plots.axes import category_axes, cut_ticks  # noqa: E402
from deem_core.plots.curves import training_curves_figure  # noqa: E402
from deem_core.methods import registry  # noqa: E402
from deem_core.methods.deem import chooses_depth  # noqa: E402
from deem_studio.jobs import (TRAIN_DEFAULTS, check_methods_fit, method_name, some_failed, status_line,  # noqa: E402
                              train_epochs, trained_methods)
from deem_studio import wording  # noqa: E402
from pages import common  # noqa: E402


LIVE_EVERY = 1.0  # seconds between redraws of a running job
QUEUED_EVERY = 3.0  # ... of a queued one
STARTS = common.STARTS
TRAIN_MAX_EPOCHS = 5000
LR_RANGE = (1e-6, MAX_LR)

st.title("Train")
ds = common.need_dataset()
if ds is None:
    st.stop()
mgr = common.manager()
data, gold = ds["data"], ds.get("gold")
for doubt in label_doubts(data):  # said on the Data page; said again where a training is launched (a run trained
    # 202 "classes" of one worker's comments, and Dawid-Skene labelled every task with them; walkthrough 23)
    st.warning(common.safe(f"Read before training: {doubt}"), icon=":material/warning:")
for sentence in common.alike_workers(data):  # (said on the Data page too)
    st.warning(common.safe(f"Read before training: {sentence}"), icon=":material/content_copy:")
constant = common.constant_warning(data)
if constant:  # (said on the Data page too; left out of the copies above, it went unsaid here; read 52)
    st.warning(common.safe(f"Read before training: {constant}"), icon=":material/block:")
# the groups the Data page's test found for these data, said again where a training is launched (three clones found at
# z 108.7 there went unsaid here; walkthrough 131)
tested = common.dependence_tests().get(data.fingerprint())
found_groups = cluster_texts(tested) if tested else []
if found_groups:
    st.warning(common.safe(
        f"Read before training: the Data page's test found {counted(len(found_groups), 'group')} of workers that "
        f"{'answers' if len(found_groups) == 1 else 'answer'} alike beyond what the tasks explain: "
        + "; ".join(found_groups) + ". DEEM's automatic start looks for such groups itself and checks its labels "
        "against methods that count each group once; with a start set by hand nothing looks for them (the "
        "cluster-weighted Dawid-Skene counts each group once)."), icon=":material/group:")
left_out = left_out_notes(data)
if left_out:  # (said on the Data page only: a Label Studio export's skipped answers went unmentioned where a training
    # is launched; walkthrough 55)
    more = f"; and {counted(len(left_out) - 3, 'more note')}" if len(left_out) > 3 else ""
    st.caption(common.safe(f"Left out when these data were read (every note is on the Data page): "
                           f"{'; '.join(left_out[:3])}{more}"))


def _typed_lr() -> None:
    """A typed rate in range is this data set's pick; one outside it stays in the box, said, and picks nothing."""
    value = float(st.session_state["train_lr"])
    if LR_RANGE[0] <= value <= LR_RANGE[1]:
        st.session_state.pop("_train_lr_typed_out", None)
        common.set_lr_pick(value, "typed on the Train page")
    else:
        st.session_state["_train_lr_typed_out"] = value


#: the DEEM settings a "Reset to the defaults" sets (the methods, device and random seed stay as picked)
FORM_DEFAULTS = {"train_layers": int(TRAIN_DEFAULTS["n_layers"]), "train_layers_auto": False,
                 "train_epochs": int(TRAIN_DEFAULTS["epochs"]), "train_seeds": int(TRAIN_DEFAULTS["n_seeds"]),
                 "train_init": TRAIN_DEFAULTS["init"], "train_gold_weight": float(TRAIN_DEFAULTS["supervised_weight"])}


#: the Methods box's defaults
DEFAULT_METHODS = ("deem", "mv", "ds")


def _methods_picked() -> None:
    st.session_state["_train_methods_data"] = common.data_key()


def _default_methods(methods: list[str]) -> None:
    st.session_state["train_methods"] = list(methods)
    _methods_picked()


def _reset_form() -> None:
    st.session_state.update(FORM_DEFAULTS)
    st.session_state.pop("_train_form_from", None)


def _form_typed() -> None:
    """A DEEM setting changed on these data: the form's settings are these data's now (typed on one data set, layers
    2 and a Dawid-Skene start, or a gold-label weight, came into the next one's form without a word; walkthrough
    56)."""
    st.session_state["_train_form_from"] = (None, common.data_key())


# settings filled from a run opened on other data came into this set's form without a word (a 2-layer Dawid-Skene
# start carried into a Toloka batch; walkthrough 50)
#: the form's settings by name, as the note on settings from other data names them
FORM_NAMES = {"train_layers": "layers", "train_layers_auto": "choosing the layers", "train_epochs": "epochs",
              "train_seeds": "seeds", "train_init": "start", "train_gold_weight": "gold-label weight"}
form_from = st.session_state.get("_train_form_from")
# the settings not at their defaults, each named with its value (it said "the layers, epochs, seeds, start and
# gold-label weight" where only a gold-label weight the data's form does not show differed; walkthrough 62). Without
# gold labels the weight is not shown and trains nothing: not counted


def _setting(key: str, value: Any) -> str:
    """A form setting by name and value ("layers 2", "start Dawid-Skene", "choosing the layers on")."""
    shown = (STARTS.get(value, value) if key == "train_init" else ("on" if value else "off") if isinstance(value, bool)
             else f"{value:g}" if isinstance(value, float) else value)
    return f"{FORM_NAMES[key]} {shown}"


changed = [_setting(key, st.session_state[key]) for key, value in FORM_DEFAULTS.items()
           if st.session_state.get(key, value) != value and (key != "train_gold_weight" or gold is not None)]
if form_from and form_from[1] != common.data_key() and changed:  # (not when they are the defaults; walkthrough 51)
    note = st.container(horizontal=True, vertical_alignment="center")
    # a warning, not a grey line: the same note as a caption went unread, and a Dawid-Skene start with 2 layers typed
    # for an ensemble trained the next data set (walkthrough 58)
    settings = ", ".join(changed)
    note.warning(icon=":material/history:", body=common.safe(
        f"Settings below are those of run {form_from[0]}, opened earlier on other data: {settings}." if form_from[0]
        else f"Settings below were set for other data: {settings}."))
    note.button("Reset to the defaults", key="train_form_reset", on_click=_reset_form)

# a method for two classes only is not offered on more (KOS was, and failed at the end of the job; walkthrough,
# tenth session); one picked on other data leaves the box with a word
offered = [m for m in registry.method_keys() if data.n_classes <= 2 or not registry.get_method(m).binary_only]
left_out = [m for m in st.session_state.get("train_methods") or [] if m not in offered]
if left_out:
    st.session_state["train_methods"] = [m for m in st.session_state["train_methods"] if m in offered]
    st.caption(common.safe(f"{', '.join(method_name(m) for m in left_out)} left out: it works on two classes only, "
                           f"and these data have {data.n_classes:,}."))
# nor one too large for these data (M-MSR on 300 workers was offered, and refused only after Train; walkthrough 53);
# each is named with its reason (KOS was missing from the box without a word; walkthrough 54); DEEM too, on more
# classes than it handles (it was offered and ticked, and Train could only refuse it)
too_large = {m: f"two classes only; these data have {data.n_classes:,}" for m in registry.method_keys()
             if m not in offered and m not in left_out}
for method in offered:
    try:
        check_methods_fit(data, [method])
    except DataError as exc:
        too_large[method] = str(exc)
if too_large:
    offered = [m for m in offered if m not in too_large]
    if "train_methods" in st.session_state:  # (set before the box exists, it would replace the box's defaults)
        st.session_state["train_methods"] = [m for m in st.session_state["train_methods"] if m in offered]
    # one line a method when there are several (one paragraph read densely; walkthrough 55)
    named = [f"{common.safe(method_name(m))}: {common.safe(reason.split(': ', 1)[-1])}"
             for m, reason in too_large.items()]
    st.caption("Not offered for these data:" + (" " + named[0] if len(named) == 1 else
                                                 "\n" + "\n".join(f"- {line}" for line in named)))
default_methods = [m for m in DEFAULT_METHODS if m in offered]
# methods picked for other data came into this set's box without a word (GLAD, MACE ... picked for a 3,000-task batch
# made a 40,000-task training 7 min 42 s where the defaults took 1 min 53 s; walkthrough 53)
picked_for, picked = st.session_state.get("_train_methods_data"), st.session_state.get("train_methods")
if picked_for is not None and picked_for != common.data_key() and picked is not None and (
        sorted(picked) != sorted(default_methods)):
    added = [method_name(m) for m in picked if m not in default_methods]
    taken = [method_name(m) for m in default_methods if m not in picked]
    changes = "; ".join(([f"{', '.join(added)} added to the defaults"] if added else [])
                        + ([f"{', '.join(taken)} taken out"] if taken else []))
    note = st.container(horizontal=True, vertical_alignment="center")
    # a warning, not a grey line: the same note as a caption went unread, and a Dawid-Skene start with 2 layers typed
    # for an ensemble trained the next data set (walkthrough 58)
    note.warning(icon=":material/history:", body=common.safe(f"The methods below were picked for other data ({changes})."))
    note.button("Use the default methods", key="train_methods_reset", on_click=_default_methods,
                args=(default_methods,))
with st.container(border=True):
    methods = st.multiselect("Methods", offered, default=default_methods, format_func=method_name,
                             key="train_methods", persist_state="session", on_change=_methods_picked,
                             help="DEEM and iRBM (DEEM without layers, i.e. Dawid-Skene as an RBM) train in the "
                                  "background; the other methods run after them on the CPU.")
    # the fields below looked used with Dawid-Skene alone picked (walkthroughs 26 and 27), and stayed editable
    # (walkthrough 30): they are greyed out, and what is typed in them cannot keep the Train button off
    idle = bool(methods) and not any(registry.get_method(m).trains for m in methods)
    if idle:
        st.caption("None of the methods picked trains: the layers (and “Choose the layers”), epochs, seeds, learning "
                   "rate, start, device and gold-label weight below are greyed out, not used (the random seed still "
                   "is).")
    c = st.columns(4)
    if st.session_state.get("train_layers_auto"):
        # the box would show a number that is not used (the sixth walkthrough read "1" while the depth was chosen):
        # it says what runs instead; the typed number stays in the session for when the tick is taken off
        c[0].text_input("Layers (DEEM)", value="auto (0-2)", disabled=True, key="train_layers_chosen",
                        help="'Choose the layers' below is ticked: 0, 1 and 2 layers train and the depth that "
                             "predicts held-out answers best is kept")
        layers, bad_layers = 1, None  # (the estimate times the choice as rounds of 1-layer models)
    else:
        layers, bad_layers = common.whole_number(
            c[0], "Layers (DEEM)", 0, common.MAX_LAYERS, value=int(TRAIN_DEFAULTS["n_layers"]), key="train_layers",
            persist_state="session", disabled=idle, on_change=_form_typed,
            help=f"multinomial layers before the iRBM, 0 to {common.MAX_LAYERS} (not used while 'Choose the layers' "
                 f"below is ticked)")
    epochs, too_many = common.whole_number(
        c[1], "Epochs", 1, TRAIN_MAX_EPOCHS, value=int(TRAIN_DEFAULTS["epochs"]), step=10, key="train_epochs",
        persist_state="session", disabled=idle, on_change=_form_typed,
        help=f"passes over the tasks, at most {TRAIN_MAX_EPOCHS:,}; on large data fewer may run (an update budget, "
             "said below the settings, with a box to lift it)")
    seeds, bad_seeds = common.whole_number(c[2], "Seeds", 1, MAX_SEEDS, value=int(TRAIN_DEFAULTS["n_seeds"]),
                                           key="train_seeds", persist_state="session", disabled=idle,
                                           on_change=_form_typed,
                                           help=f"independent runs trained together (1 to {MAX_SEEDS}); their answers are "
                                                "averaged")
    # the field shows the one picked learning rate of these data (pages/common.py); typing in it picks too
    current, source = common.current_lr()
    typed_out = st.session_state.get("_train_lr_typed_out")
    st.session_state["train_lr"] = current if typed_out is None else typed_out
    # (no min/max: Streamlit's bounds would keep the last rate while the box showed the typed one, as for the epochs)
    lr = c[3].number_input("Learning rate", format="%.5g", key="train_lr", on_change=_typed_lr, disabled=idle,
                           help=f"the rate picked on the Sweep page, or type one ({LR_RANGE[0]:g} to {LR_RANGE[1]:g})")
    bad_lr = None if typed_out is None else wording.out_of_range("Learning rate", typed_out, *LR_RANGE)
    # the start's column wider: at 900 px a quarter of the form cut "majority vote" to "majorit" (walkthrough 115)
    c = st.columns([1.6, 1, 1, 1])
    init = c[0].selectbox("Start from", list(STARTS), index=list(STARTS).index(TRAIN_DEFAULTS["init"]),
                          key="train_init", persist_state="session", format_func=STARTS.get, disabled=idle,
                          on_change=_form_typed,
                          help="auto: both starts train on the answers left after holding 10% out, and the one "
                               "that predicts the held-out answers better is kept, unless majority vote or the "
                               "cluster-weighted Dawid-Skene (which counts each group of copying workers once) "
                               "predicts them clearly better: then DEEM's labels are that method's (the safety rule, "
                               "said with the result). A start picked here, with the layers fixed, trains DEEM's own "
                               "model without these checks (with a gold-label weight of 0). With a gold-label weight "
                               "above 0, both starts train on all answers with half of the gold labels, the other half "
                               "decides between them and checks the result against majority vote and the "
                               "cluster-weighted Dawid-Skene, with a start picked here too. The result says "
                               "which start was used and why. The Dawid-Skene start gives each worker "
                               f"{TRAIN_DEFAULTS['ds_prior']:g} pseudo-answers per class shaped like the whole crowd's, "
                               "so workers with a few answers start as typical workers (the method 'Dawid-Skene "
                               "(shared prior)' is that start on its own; 'Dawid-Skene' is plain).")
    devices = common.device_choices()
    device = c[1].selectbox("Device", devices, index=devices.index(TRAIN_DEFAULTS["device"]), key="train_device",
                            persist_state="session", disabled=idle, help="auto = the GPU when there is one")
    seed, bad_seed = common.whole_number(c[2], "Random seed", 0, 2 ** 31 - 1, value=int(TRAIN_DEFAULTS["seed"]),
                                         key="train_seed", persist_state="session",
                                         help="the same seed, settings and data train the same model")
    weight = float(TRAIN_DEFAULTS["supervised_weight"])
    if gold is not None:
        weight = c[3].number_input("Gold-label weight", value=weight, step=0.1,
                                   key="train_gold_weight", persist_state="session", disabled=idle,
                                   on_change=_form_typed,
                                   help="0: the gold labels only score the results (accuracy); they neither train "
                                        "the model nor choose its start. Above 0: the model also trains on them, "
                                        "and with start auto they may overrule the choice of start; the layers are "
                                        "not chosen. Half of the gold tasks then train, the other half check DEEM "
                                        "against majority vote and the cluster-weighted Dawid-Skene, whose labels "
                                        "are returned when significantly more accurate there. Measured with gold "
                                        "labels on 20% of the tasks of nine sets, the other tasks' accuracy moved "
                                        "by −0.1 to +4.5 points at weight 1, −0.3 to +6.3 at 10; the gold tasks' "
                                        "own accuracy rises with the weight and is then no test. Keep 0 unless a "
                                        "held-out check says more.")
    layers_auto = st.checkbox("Choose the layers (0, 1 or 2) from held-out answers", key="train_layers_auto",
                              persist_state="session", disabled=idle, on_change=_form_typed,
                              help="DEEM: train 0, 1 and 2 layers and keep the depth that predicts held-out answers "
                                   "best (about 3x the training time) instead of the Layers box's number. Not with a "
                                   "gold-label weight above 0 (the gold labels train the model: 1 layer is used)")
    bad_weight = wording.out_of_range("Gold-label weight", float(weight), 0.0, 100.0)
    problems = [bad_seed] if idle else [None if layers_auto else bad_layers, too_many, bad_seeds, bad_lr, bad_seed,
                                        bad_weight]
    problems.append(common.one_class(data))  # (Train launched a run that failed in 0.03 s; walkthrough 42)
    if idle:  # the run holds the defaults, never what was typed into fields it does not use
        layers, epochs, seeds, lr, init, device, weight = (TRAIN_DEFAULTS[k] for k in (
            "n_layers", "epochs", "n_seeds", "lr", "init", "device", "supervised_weight"))
        layers_auto = False
    supervised = gold is not None and float(weight) > 0  # (the gold labels train DEEM: no depth or start chosen)
    if layers_auto and supervised:  # (the tick was dropped without a word on the page, the CLI said it; walkthrough 56)
        st.caption("With a gold-label weight above 0 the layers are not chosen (the gold labels train the model): "
                   "1 layer is used. Set the weight to 0 to choose them from held-out answers.")
    deem_methods = [m for m in methods if registry.get_method(m).trains]
    if bad_lr is None and deem_methods:  # (else the error below says what is wrong with the typed rate; with no
        # method that trains, no rate is used: walkthrough 29)
        st.caption(common.safe(f"Learning rate {wording.fmt_lr(lr)}: {source}."))
        returned = common.latest_fallback() if "deem" in deem_methods and init == "auto" else None
        if returned:  # (the Sweep page said it; the rate picked there arrived here without it: walkthrough 101)
            st.caption(common.safe(common.fallback_rate_note(*returned, "A new learning rate")))
    if data.n_workers == 1:  # (said on the Data page only; the Train button trained it; walkthrough 85)
        st.warning(common.safe(f"One worker ({shortened(str(data.workers[0]), 40)!r}) gave every answer: there is "
                               f"nothing to aggregate, every method returns its answers. Load the workers' answers "
                               f"on the Data page."), icon=":material/person:")
    # too few answers held out to choose: the Dawid-Skene start alone trains (the estimate's line said "× 2 starts"
    # beside this caption; walkthrough 85)
    too_small = ("deem" in deem_methods and (init == "auto" or layers_auto) and not supervised
                 and heldout_size(data) < MIN_HELDOUT)
    if too_small and data.n_workers > 1:  # (said only after training; walkthrough 57) - not beside the one-worker
        # warning: "compare the two" where there is nothing to aggregate (walkthrough 86)
        # (the answers were enough, the tasks of two answers not: "1,500 answers; choosing needs about 295" of a
        # file of one worker; walkthrough 84)
        shared = int((data.answers_per_task() >= 2).sum())
        short = (f"{data.n_answers:,} answers; choosing needs about {answers_to_choose():,}"
                 if data.n_answers < answers_to_choose() else
                 f"{shared:,} task{'s have' if shared != 1 else ' has'} two answers or more, and choosing holds out "
                 f"one answer of each of at least {MIN_HELDOUT:,} such tasks")
        st.caption(f"These data are too small to choose DEEM's start{' and layers' if layers_auto else ''} from "
                   f"held-out answers ({short}): the "
                   f"{'Dawid-Skene' if init == 'auto' else STARTS.get(init, init)} start and 1 layer are used, and "
                   f"nothing checks DEEM against majority vote: compare the two in the results.")
    if "deem" in deem_methods and init != "auto" and not layers_auto and not supervised:  # (walkthrough, ninth
        # session: a hand-picked start with 2 layers landed below majority vote on copying workers, without a word;
        # with a gold-label weight the gold path checks it: the note said otherwise, walkthrough 60)
        st.caption("With the start and the layers fixed by hand nothing is held out: workers who copy each other are "
                   "not looked for, and DEEM is not checked against majority vote and the cluster-weighted "
                   "Dawid-Skene. Start from auto does both.")
    budget = TRAIN_DEFAULTS["max_updates"]
    planned = train_epochs({"epochs": int(epochs), "max_updates": budget}, data.n_tasks)
    if deem_methods and budget is not None and planned < int(epochs):
        st.caption(budget_text(data.n_tasks, int(epochs), int(TRAIN_DEFAULTS["batch_size"]), budget)
                   + " (a model run: each seed and start). Training converges in updates, not in passes over the data.")
        if st.checkbox(f"Train all {int(epochs):,} epochs (no update budget)", key="train_no_budget",
                       persist_state="session"):
            budget, planned = None, int(epochs)
    baselines = [m for m in methods if m not in deem_methods]
    # "Choose the layers" trains the 0-, 1- and 2-layer models one after the other (each depth timed: as three 1-layer
    # ones the estimate was 1.36x short; walkthrough 64), or on a GPU as one batched model (timed as one 1-layer one)
    # (with the gold labels training DEEM the depth is not chosen: 1 layer, as the engine says)
    # (not where the data are too small to choose: "× 3 depths" beside "1 layer are used"; the diff's read)
    choosing = ("deem" in deem_methods and chooses_depth("auto" if layers_auto else int(layers), supervised)
                and not too_small)
    rounds = common.training_rounds("auto", device, supervised, int(seeds)) if choosing else 1
    estimate = None
    if methods and not any(problems):  # no timing probe of a job that cannot launch
        estimate = common.cached_estimate(
            "train", deem_methods=tuple(deem_methods), baselines=tuple(baselines),
            n_layers="auto" if rounds > 1 else 1 if too_small and layers_auto else int(layers), lr=float(lr),
            n_seeds=int(seeds),
            init="ds" if too_small and init == "auto" else init,
            device=device, supervised_weight=float(weight))
    if estimate is not None:
        estimate = estimate.with_epochs(planned)  # (an epoch of the probe: one of each depth and method)
        # only DEEM chooses its depth: iRBM (no layers) trains once (it was counted, and said, "× 3 depths" too)
        once = [m for m in deem_methods if m != "deem"] if rounds > 1 else []
        depths = (f" × {rounds} depths" if rounds > 1 else " (the 3 depths as one batched model)" if choosing else "")
        if once:
            depths = f" (DEEM{depths}, {', '.join(method_name(m) for m in once)} once)"
        if deem_methods:
            # "auto" trains both starts as one batched model, as the estimate times it (the line said "1 DEEM model(s)
            # × 1 seed(s)" and the run "training the 2 candidates"; walkthrough 62)
            starts = " × 2 starts" if init == "auto" and not too_small else ""
            # the models by name beside DEEM: iRBM is none ("2 DEEM models" of DEEM and iRBM; walkthrough 112)
            trained = ("1 DEEM model" if list(deem_methods) == ["deem"]
                       else " and ".join(method_name(m) for m in deem_methods))
            what = (f"{trained}{starts} × {wording.counted(seeds, 'seed')} × "
                    f"{wording.counted(planned, 'epoch')}" + depths)
            what += f" + {wording.counted(len(baselines), 'baseline')}" if baselines else ""
        else:  # (with a capital: "the baselines" opened the line; walkthrough 29; one is "The baseline")
            what = "The baselines" if len(baselines) > 1 else "The baseline"
        st.caption(f"{what} on {data.n_tasks:,} tasks: {common.describe_estimate(estimate)}.")
    out_of_range = common.show_problems(problems)
    if st.button("Train", type="primary", key="train_launch", disabled=not methods or out_of_range):
        config = {"methods": list(methods), "n_layers": "auto" if layers_auto else int(layers), "epochs": int(epochs),
                  "max_updates": budget, "lr": float(lr),
                  "n_seeds": int(seeds), "seed": int(seed), "init": init, "device": device,
                  "supervised_weight": float(weight),
                  "estimate": estimate.to_dict() if estimate is not None else None}
        try:
            common.launch("train", config, data, gold)
        except ValueError as exc:
            st.error(common.safe(exc), icon=":material/warning:")
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "launching the training")

common.show_page_run("train")
run_id, snap = common.current_snapshot("train_run")
if not common.run_of_this_data(run_id):
    common.other_data_note(run_id)
st.subheader(f"Run `{run_id}`")
launched = (mgr.store.get(run_id).get("config") or {}) if run_id else {}
trained = trained_methods(launched)  # (a Dawid-Skene run said "launched with learning rate 0.01, 1 layer(s), 100
# epochs"; walkthrough 25)
if launched.get("lr") is not None and trained:  # (the form above holds the next training's: after "Train with
    # learning rate 0.03" the run below, trained at 0.01, read as the 0.03 run; walkthrough 18)
    layers = launched.get("n_layers") if "deem" in trained else 0  # (its depth was said nowhere; walkthrough 20)
    gold_trained = float(launched.get("supervised_weight") or 0) > 0
    # (with a gold-label weight the depth is not chosen: "layers chosen (0-2)" beside the note saying so; walkthrough 66)
    asked = ", 1 layer (not chosen: the gold labels train the model)" if gold_trained else ", layers chosen (0-2)"
    st.caption(f"This run was launched with learning rate {wording.fmt_lr(launched['lr'])}"
               + ("" if layers is None else asked if layers == "auto" else f", {wording.counted(layers, 'layer')}")
               + (f", {wording.counted(launched['epochs'], 'epoch')}" if launched.get("epochs") else "")
               + (f", {wording.counted(launched['n_seeds'], 'seed')}" if launched.get("n_seeds") else "")
               # (a run trained on gold labels read like one that was not; walkthrough 63)
               + (f", gold-label weight {float(launched['supervised_weight']):g}" if gold_trained else "")
               # a batch made smaller to fit the server's bound for one job (walkthrough 129)
               + (f", in batches of {int(launched['batch_size']):,} (the default {int(launched['batch_fitted_from']):,} "
                  f"would exceed this server's memory bound for one job)" if launched.get("batch_fitted_from") else "")
               + ".")


# A queued run redraws every few seconds only: many sessions waiting in the queue must not slow the running job
interval = common.redraw_every(snap, LIVE_EVERY, QUEUED_EVERY)  # (a job just launched: the live pace)


@st.fragment(run_every=interval)
def live(run_id: str) -> None:
    snapshot = mgr.snapshot(run_id)
    if snapshot is None or snapshot.done or common.pace_changed(snapshot, interval, LIVE_EVERY, QUEUED_EVERY):
        common.redraw_page()  # ended (final view), or started (redraw at the live pace)
    if snapshot.status == "queued":
        # (the run ahead named to the owner only: a visitor of the link opened it with the id; attack round 55)
        st.info(common.safe(wording.sentence(status_line(snapshot, owner=common.can_control(run_id)))),
                icon=":material/hourglass_top:")
    else:
        first = snapshot.seconds_to_first_point
        # said for a few seconds after it came (all run long it read as stale news: walkthrough)
        # (in words a user reads: "first curve point after 0.3 s" meant nothing to one; walkthrough 31)
        extra = (f" · the curves below began {first:.1f} s after the launch" if first is not None
                 and not snapshot.cancelling and snapshot.elapsed < first + 10 else "")
        st.progress(snapshot.fraction, text=common.safe(status_line(snapshot) + extra))
    history = snapshot.history
    if len(history) and "energy_difference" in history:
        try:
            common.plotly_chart(training_curves_figure(history), key=f"train_live_{run_id}")
        except Exception as exc:  # noqa: BLE001
            common.show_error(exc, "live curve")
    if not owner:
        common.read_only_note(run_id)
    elif not snapshot.cancelling and st.button("Cancel training", key=f"train_cancel_{run_id}"):
        common.cancel(run_id)


owner = common.can_control(run_id)  # only the owner's session may cancel (the link alone is read-only)
if not snap.done:
    live(run_id)
    st.stop()
if not owner:  # (said on Results and Runs, not here, beside an active form; walkthrough 41)
    common.read_only_note(run_id, launch=True)

if snap.status == "failed":
    st.error(common.safe(f"The training failed: {snap.message}"), icon=":material/error:")
    saved = mgr.store.load_history(run_id)  # (read here, where they are drawn: the status read them no more)
    if saved is not None and len(saved) and "energy_difference" in saved:  # curves saved while it trained
        with st.expander("Energy curves saved before it stopped"):
            common.plotly_chart(training_curves_figure(saved), key=f"train_failed_{run_id}")
    st.stop()
partial = snap.status == "cancelled" or some_failed(snap.message)  # (a failure was in green)
(st.warning if partial else st.success)(
    common.safe(wording.sentence(status_line(snap))),  # (a box opening "finished in 3.0 s"; walkthrough 25)
    icon=":material/stop_circle:" if snap.status == "cancelled" else
    ":material/warning:" if partial else ":material/check_circle:")
for note in dict.fromkeys(snap.messages):  # each note once
    st.caption(common.safe(f"note: {note}"))


# every method's labels, the curves, metrics, classes and gold labels, without the answers: one copy for every
# session (each session kept its own copy of all of a run's tables and annotations: 350 MB a session on a
# 60,000 x 200-class run's link; attack round 14)
loaded = common.run_tables(run_id, labels_only=True)
results = loaded.results
run_gold = loaded.gold
for part, problem in loaded.problems.items():  # one damaged file never hides the rest of the run (as on Results)
    st.warning(common.safe(f"{part.removeprefix('results/')}: {problem}; the rest of the run is shown"),
               icon=":material/broken_image:")
if not results:
    st.info("This run produced no labels.")
    st.stop()
metrics = loaded.extras.get("metrics") if isinstance(loaded.extras.get("metrics"), dict) else {}
# the labels in the order of the table of methods (the run's order, DEEM first when trained): the store reads them by
# file name, and "Cluster-weighted Dawid-Skene" came first in the charts and the confusion matrix's picker
# (walkthrough 72)
order = list(metrics)
results = {m: results[m] for m in sorted(results, key=lambda m: order.index(m) if m in order else len(order))}
for method, entry in metrics.items():
    if entry.get("start_reason"):
        st.caption(common.safe(f"{method_name(method)}: {entry['start_reason']}."))
    # (a classic method's own: the entry holds the clusters its labels follow; walkthrough 128)
    if followed := followed_text(entry.get("selection") or entry):  # (on Diagnostics only; walkthrough 84)
        # (the method it names was not in the default run, and nothing said where it is; walkthrough 85)
        # (and where it is in the run, where to compare: the advice dropped its last sentence; walkthrough 86)
        # (the table is below the warning: "above" sent a reader the wrong way; walkthrough 87)
        add = (f" {method_name('cwds')} is in this run: compare the two in the table of methods below and on Results."
               if "cwds" in metrics else f" Add {method_name('cwds')} under Methods to train it beside DEEM.")
        st.warning(common.safe(f"{method_name(method)}: {followed}{add}"), icon=":material/group:")
    if safety_rule_reference((entry.get("selection") or {}).get("fallback")):  # (how to train DEEM's own model was
        # said nowhere: four runs of other depths and rates returned the same labels; walkthrough 50)
        # (with gold labels training it, a start picked by hand is checked too: the advice led back here; walkthrough
        # 60)
        trained_on_gold = float((loaded.config or {}).get("supervised_weight") or 0) > 0
        st.caption(f"To train {method_name(method)}'s own model on these data anyway, "
                   + ("set the gold-label weight to 0 and " if trained_on_gold else "")
                   + "pick its start (Dawid-Skene or majority vote) in Start from with the layers fixed: nothing is "
                   "held out then, and its labels are not compared with these methods.")
rows = []
for method, entry in metrics.items():
    accuracy = entry.get("accuracy")
    # (the accuracy beside the name: after the status, at 900 px it lay past the table's right edge; walkthrough 62)
    rows.append({"method": wording.labelled_method_name(method, entry),
                 "accuracy vs gold": float(accuracy) if accuracy is not None else float("nan"),
                 "status": entry.get("status"),
                 "disagrees with majority vote": entry.get("share_disagreeing_with_majority"),
                 "seconds": entry.get("seconds"), "note": entry.get("message", "")})
table = pd.DataFrame(rows, columns=["method", "accuracy vs gold", "status", "disagrees with majority vote", "seconds",
                                   "note"])  # (no rows when the run's metrics are lost: its KeyError failed the page)
table["accuracy vs gold"] = pd.to_numeric(table["accuracy vs gold"], errors="coerce")
if table["accuracy vs gold"].isna().all():
    table = table.drop(columns="accuracy vs gold")
common.table(table, formats={"accuracy vs gold": "{:.4f}", "disagrees with majority vote": "{:.3f}", "seconds": "{:.2f}"},
             column_config={"disagrees with majority vote": st.column_config.Column(
                 help="share of tasks whose label is not among the task's most answered labels (on a tie, a "
                      "label among the tied ones agrees with majority vote, whichever its column shows)"),
                 # (a fallback's name read "DEEM (labels from cluster-weighted D…" at 1400 px; walkthrough, tenth
                 # session)
                 "method": st.column_config.TextColumn(width="large"), "note": st.column_config.TextColumn(width="large")})
tied, of = next(((int(entry["majority_vote_ties"]), len(results[method])) for method, entry in metrics.items()
                 if entry.get("majority_vote_ties") and results.get(method) is not None), (0, 0))
if tied:  # (Wawa read 0.000 beside an accuracy 4 points above majority vote's: its labels differed on the ties only;
    # the column's help said so, the page did not; walkthrough 56)
    st.caption(f"disagrees with majority vote: on {tied:,} of the {of:,} tasks majority vote is a tie, and "
               f"any of the tied labels counts as agreeing with it there; the Results page lists those tasks.")
if "accuracy vs gold" in table and wording.gold_scored(metrics):
    st.caption(common.safe(f"accuracy vs gold: {wording.gold_scored(metrics, loaded.config)}"))
# (the owner's: which gold tasks are ties, and whether their gold label is among the tied classes, narrow down the
# gold labels a link's visitor does not get; attack round 45)
if "accuracy vs gold" in table and common.can_control(run_id) and (luck := wording.tie_luck_sentence(metrics)):
    st.caption(luck)
for method, entry in metrics.items():  # how DEEM's start and depth were chosen: the evidence, as plain text
    lines = selection_lines(entry.get("selection") or {}, table=False)
    if entry.get("start_reason"):  # its first line (and a fallback) says again what the caption above says
        lines = [line for line in lines[1:] if not (line.startswith("FALLBACK") and "FALLBACK" in entry["start_reason"])]
    if lines:
        st.code(common.plain_text(f"{method_name(method)}: " + "\n".join(lines)), language=None, wrap_lines=True)
    evidence = selection_table(entry.get("selection") or {})
    if len(evidence):  # the criterion per candidate and reference, as a table
        common.evidence_table(evidence, (entry.get("selection") or {}).get("clusters"))

#: colours of more than ten methods' bars: Tableau's ten and four darker ones far from them (every registered method)
MANY_METHOD_COLOURS = [*px.colors.qualitative.T10, "#222222", "#6A3D9A", "#B15928", "#A6761D"]


def named(method: str) -> str:
    """A method's name on this page's charts and pickers; labels from a fallback say whose they are (the charts said
    "DEEM" for cluster-weighted Dawid-Skene's labels; walkthrough, tenth session)."""
    return wording.labelled_method_name(method, metrics.get(method))


labels = {named(method): frame["label"] for method, frame in results.items()}
# one above the other: side by side, at 900 px the heatmap's cells could not be read and the bars' legend lay on
# them (walkthrough, ninth session)
left, right = st.container(), st.container()
with left:
    if len(results) < 2:  # (one method: a 1 x 1 heatmap of 1.000 said nothing; walkthrough 102)
        st.caption("Agreement between methods: train two or more methods to compare their labels.")
    else:
        st.markdown("**Agreement between methods**")
        agree = agreement.method_agreement(labels)
        # with majority vote, as the table's "disagrees with majority vote" counts: any of a tied task's most answered
        # labels agrees with it (0.016 there and 0.889 here, its tie rule's pick, read as two answers to one question
        # after two captions explained them; walkthroughs 53 and 72)
        mv_name = named("mv") if "mv" in results else None
        tie_cells = 0  # cells counted so (not `counted`: the text function of this page)
        for method in results if mv_name is not None else ():
            share = (metrics.get(method) or {}).get("share_disagreeing_with_majority")
            if method != "mv" and share is not None and np.isfinite(float(share)):
                agree.loc[named(method), mv_name] = agree.loc[mv_name, named(method)] = 1.0 - float(share)
                tie_cells += 1
        tie_aware = bool(tied) and tie_cells > 0
        st.caption("share of tasks on which the two give the same label"  # (not "the table above": another stood
                   # between; walkthrough 73)
                   + ("; with majority vote, as the column “disagrees with majority vote” counts it: on a tied task any "
                      "of its most answered labels counts as the same" if tie_aware else ""))
        off = agree.to_numpy()[~np.eye(len(agree), dtype=bool)] if len(agree) > 1 else np.array([1.0])
        off = off[np.isfinite(off)]
        # the colour scale spans the values shown: 0.94 and 1.0 must not be one colour
        low = float(off.min()) if off.size else 0.0
        zmin = max(0.0, low - 0.1 * (1.0 - low) - 1e-3)
        # the axes name a method without whose labels it gives ("DEEM*"), said below, the whole name on hover: at 900 px
        # "DEEM (labels from cluster-weighted Dawid-Skene)" on both axes left the cells 60 px and cut the name
        # (walkthrough 62)
        names = list(agree.index)
        # (only those: "Dawid-Skene (shared prior)" read "Dawid-Skene*" beside "DEEM*", two stars meaning two things;
        # walkthrough 100)
        short = [name.split(" (labels from ", 1)[0] + "*" if " (labels from " in name else name for name in names]
        if len(set(short)) < len(short):
            short = names
        fig = px.imshow(agree.to_numpy(), x=short, y=short, zmin=zmin, zmax=1, text_auto=".3f",
                        color_continuous_scale="Blues", aspect="auto", labels={"color": "same label"})
        category_axes(fig)  # (a method named like a number stays one cell; walkthrough 67)
        fig.update_traces(customdata=[[f"{row} / {col}" + (" (a tie's labels all count)" if tie_aware and mv_name in
                                                           (row, col) and row != col else "") for col in names]
                                      for row in names],
                          hovertemplate="%{customdata}<br>same label on %{z:.3f} of the tasks<extra></extra>")
        # taller with more methods: twelve in 320 px were cells of 15 px under the toolbar, their rotated names cut
        # ("Cluster-weighted Daw…"; walkthrough 100)
        fig.update_layout(height=common.agreement_height(len(names)), margin={"t": 30, "b": 20})
        common.plotly_chart(fig, key=f"agree_{run_id}")
        starred = [f"{s} is {n}" for s, n in zip(short, names) if s != n]
        if starred:
            st.caption(common.safe("; ".join(starred) + "."))
with right:
    st.markdown("**Label distribution**")
    dist = agreement.label_distribution(labels, loaded.classes)
    if len(dist) > common.MAX_DRAWN_CLASSES:
        st.caption(f"the {common.MAX_DRAWN_CLASSES} most frequent of {len(dist):,} classes")
        dist = dist.loc[dist.max(axis=1).nlargest(common.MAX_DRAWN_CLASSES, keep="first").index]
    long = dist.reset_index().melt(id_vars="label", var_name="method", value_name="share")
    # one colour per method: the theme's ten came round again for twelve methods (DEEM and Zero-based skill alike;
    # walkthrough 72), and Dark24's 11th and 12th were two magentas (walkthrough 73)
    fig = px.bar(long, x="label", y="share", color="method", barmode="group", labels={"share": "share of tasks"},
                 category_orders={"method": list(labels)},
                 color_discrete_sequence=MANY_METHOD_COLOURS if len(labels) > 10 else None)
    category_axes(fig, y=False)
    cut_ticks(fig, [str(c) for c in dist.index])  # (long class names took the chart; walkthrough 113)
    fig.update_layout(height=320, margin={"t": 20, "b": 20})
    common.plotly_chart(fig, key=f"dist_{run_id}")
    voted = results.get("mv")
    if tied and voted is not None and "majority_vote_tied" in voted:
        # (82 of 104 ties went to one class, whose bar rose 7 points above the other methods' as if the data said so;
        # walkthrough 72; "the labels answered first" read as a rule per task: walkthrough 73; "first in the file" was
        # wrong, the answers are ordered by task and worker: walkthrough 74; "the one answered first" read as the
        # task's first answer, which it is not: walkthrough 81)
        won = voted.loc[voted["majority_vote_tied"].astype(bool), "label"].astype(str).value_counts()
        # (not "named": that is this page's function of a method's name, and the confusion picker below failed;
        # walkthrough 83)
        tie_classes = (metrics.get("mv") or {}).get("tie_order") or []
        tie_order = ("; here " + ", ".join(f"“{shortened(str(c), 30)}”" for c in tie_classes[:5])
                     + (", ..." if len(tie_classes) > 5 else "")) if tie_classes else ""
        if len(won):
            st.caption(common.safe(
                f"Majority vote's bars give {'its tied task' if tied == 1 else f'each of its {tied:,} tied tasks'} one of the "
                f"tied labels by its tie rule, "
                f"one order of the classes for every task (crowd-kit's: the order in which the classes first appear "
                f"among the answers sorted by task and worker{tie_order}), so "
                f"“{shortened(won.index[0], 40)}” took {int(won.iloc[0]):,} of the {int(won.sum()):,} ties and its "
                f"bar stands higher than the answers alone put it."))

if run_gold is not None and len(run_gold) and not common.can_control(run_id):
    # a method's confusion against the gold labels, beside its labels task by task, pins the gold label of every task
    # of a predicted class whose column holds one gold class: a link's visitor sees the accuracies only
    st.caption("The confusion matrices against the gold labels stay with the run's owner; the accuracies above "
               "are what its link shows.")
elif run_gold is not None and len(run_gold):
    st.markdown("**Against the gold labels**")
    method = st.selectbox("Confusion matrix of", list(results), format_func=named,
                          key=f"train_confusion_{run_id}")
    classes = loaded.classes
    n_classes = len(classes) if classes is not None else int(results[method]["label"].nunique())
    if n_classes > common.MAX_DRAWN_CLASSES:  # a matrix of n x n cells: the most frequent confusions instead
        st.caption(f"{n_classes:,} classes: the matrix is drawn up to {common.MAX_DRAWN_CLASSES} classes; "
                   f"the most frequent confusions instead")
        common.table(agreement.frequent_confusions(results[method]["label"], run_gold))
    else:
        matrix = agreement.confusion_against_gold(results[method]["label"], run_gold, classes)
        fig = px.imshow(matrix, text_auto=True, color_continuous_scale="Blues", aspect="auto",
                        labels={"x": "predicted", "y": "gold", "color": "tasks"})
        category_axes(fig)  # class labels, not a number line (numeric classes: ticks at -0.5, 0.5)
        # (cut: classes named with 4,015 characters left the matrix 60 px wide; walkthrough 113)
        cut_ticks(fig, [str(c) for c in matrix.columns])
        cut_ticks(fig, [str(c) for c in matrix.index], x=False, y=True)
        fig.update_layout(height=360, margin={"t": 20, "b": 20})
        common.plotly_chart(fig, key=f"confusion_{run_id}")

if loaded.history is not None and len(loaded.history):
    with st.expander("Energy curves"):
        # each curve named by the candidate its choice kept (a reference returned by the safety rule has no curve)
        kept = {method: (sel["start"], sel["layers"]) for method, entry in metrics.items()
                if (sel := entry.get("selection") or {}).get("start") and sel.get("layers") is not None
                and not sel.get("fallback")}
        common.plotly_chart(training_curves_figure(loaded.history, chosen=kept), key=f"train_final_{run_id}")
for method, entry in metrics.items():  # a method whose labels are an untrained reference has no curve: say why
    reference = safety_rule_reference((entry.get("selection") or {}).get("fallback"))
    if reference:
        # (its own candidates trained, set aside by the rule: "has no energy curve" read as if nothing had trained;
        # walkthrough 112)
        st.caption(common.safe(f"No energy curve is drawn for {method_name(method)}'s labels: they come from "
                               f"{reference} (the safety rule), which is not trained. {method_name(method)}'s own "
                               f"training ran, and the rule set it aside."))
if st.button("See the labels and downloads", key="train_to_results"):
    common.go("pages/results.py")
