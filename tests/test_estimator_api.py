"""DEEM on sklearn's BaseEstimator: parameters from the signature, clone, repr; the fitted state declared once
(FITTED_STATE) drives the docstring and save/load."""

from __future__ import annotations

import inspect

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from deem_core import DEEM
from deem_core.methods.base import Aggregator
from deem_core.methods.deem import FITTED_STATE


def test_get_params_come_from_the_signature_and_clone_round_trips():
    signature = inspect.signature(DEEM.__init__)
    names = [n for n in signature.parameters if n != "self"]
    assert sorted(DEEM().get_params()) == sorted(names)
    assert DEEM().get_params() == {n: signature.parameters[n].default for n in names}
    model = DEEM(n_layers=2, epochs=7, lr="auto", n_seeds=3, seed=5, init="mv", supervised_weight=0.5)
    twin = clone(model)
    assert twin is not model and type(twin) is DEEM
    assert twin.get_params() == model.get_params()
    assert not hasattr(twin, "network_")
    assert " ".join(repr(model).split()) == ("DEEM(epochs=7, init='mv', lr='auto', n_layers=2, n_seeds=3, seed=5, "
                                             "supervised_weight=0.5)")  # only what differs from the defaults
    assert repr(DEEM()) == "DEEM()"
    assert model.set_params(epochs=9) is model and model.epochs == 9
    with pytest.raises(ValueError, match="Invalid parameter 'nope'"):
        model.set_params(nope=1)
    assert isinstance(model, Aggregator)


def test_clone_of_a_fitted_model_is_unfitted(small_condind):
    df, _ = small_condind
    model = DEEM(epochs=1, device="cpu").fit(df)
    assert hasattr(clone(model), "epochs") and not hasattr(clone(model), "posterior_")


def test_fitted_state_is_declared_once(small_condind, tmp_path):
    df, truth = small_condind
    model = DEEM(epochs=2, n_seeds=2, device="cpu", supervised_weight=0.5).fit(df, gold=truth.iloc[::5])
    declared = {a.name for a in FITTED_STATE}
    learnt = {name for name in vars(model) if name.endswith("_") and not name.startswith("_")}
    assert learnt == declared  # every attribute fit sets is declared, and nothing else
    for attribute in FITTED_STATE:
        assert f"    {attribute.name}: " in DEEM.__doc__  # the Attributes section comes from the declaration
    loaded = DEEM.load(model.save(tmp_path / "m.deem"), device="cpu")
    for attribute in FITTED_STATE:
        if attribute.key is None:
            continue
        mine, theirs = getattr(model, attribute.name), getattr(loaded, attribute.name)
        if attribute.kind == "network":
            for a, b in zip(mine.state_dict().values(), theirs.state_dict().values()):
                assert bool((a == b).all())
        elif attribute.kind == "history":
            pd.testing.assert_frame_equal(mine, theirs)
        elif isinstance(mine, (np.ndarray, pd.Index)):
            np.testing.assert_array_equal(np.asarray(mine), np.asarray(theirs))
        else:
            assert mine == theirs, attribute.name
    pd.testing.assert_frame_equal(loaded.results_frame(), model.results_frame())


def test_public_methods_for_new_data(small_condind):
    df, _ = small_condind
    model = DEEM(epochs=2, n_seeds=2, device="cpu").fit(df)
    some = df[df["task"].isin(model.tasks_[:30])]
    encoded = model.encode(some)
    assert list(encoded.workers) == list(model.workers_) and encoded.n_tasks == 30
    hidden = model.hidden_posterior(encoded)
    assert tuple(hidden.shape) == (2, 30, 3)
    per_run = model.run_posteriors(encoded)
    np.testing.assert_allclose(per_run, model.to_class_order(hidden))
    np.testing.assert_allclose(per_run.mean(axis=0), model.predict_proba(some).to_numpy(), rtol=1e-6)
    codes = model.gold_codes(encoded, pd.Series([0, 2], index=encoded.tasks[:2]))
    assert list(codes[:3]) == [0, 2, -1]
