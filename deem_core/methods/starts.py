"""Starting points of a batched DEEM training (App. G.1 and the Dawid-Skene start of Lemma 1)."""

from __future__ import annotations

from typing import Sequence

import torch

from deem_core.data.annotations import AnnotationSet
from deem_core.methods.dawid_skene import DEFAULT_DS_PRIOR, DawidSkeneFit, fit_dawid_skene
from deem_core.model.network import DEEMNetwork
from deem_core.model.training import TrainingConfig

__all__ = ["INIT_METHODS", "initial_network", "stack_networks"]

INIT_METHODS = ("mv", "ds", "auto")


def initial_network(data: AnnotationSet, seeds: Sequence[int], n_layers: int, init: str, device: torch.device,
                    config: TrainingConfig | None = None, explicit: bool = False,
                    spec: dict | None = None, ds_prior: float = DEFAULT_DS_PRIOR,
                    ) -> tuple[DEEMNetwork | None, DawidSkeneFit | None]:
    """Initial network for R = len(seeds) runs and the Dawid-Skene fit it came from.

    ``init="mv"`` returns ``(None, None)``: the trainer's own majority-vote start (identity iRBM + noise),
    drawn per run from that run's seed (with ``explicit=True`` that same network is built here). ``init="ds"``: every run's iRBM is set to one Dawid-Skene fit
    through Lemma 1 and its layers are identity + N(0, 0.005^2) drawn from the run's own seed, so a run
    starts the same alone or batched, and runs sharing a seed share their initial weights. ``spec``: the
    network's ``layout``, ``pair_keys`` and ``bias`` (:class:`DEEMNetwork`; the training data's
    ``network_spec()``; default: the matrix layout and the iRBM bias). ``ds_prior``: the Dawid-Skene fit's shared
    prior (:data:`DEFAULT_DS_PRIOR`): with a handful of answers a worker starts as a typical worker of the crowd.
    """
    if init not in ("mv", "ds"):
        raise ValueError(f"init must be 'mv' or 'ds' here, got {init!r}")
    if init == "mv" and not explicit:
        return None, None
    config = config or TrainingConfig()
    network = DEEMNetwork(len(seeds), data.n_workers, data.n_classes, int(n_layers), **(spec or {})).to(device)
    # one run is drawn in place; several through one scratch run (each from its own seed)
    single = network if len(seeds) == 1 else network.like(1)
    with torch.no_grad():
        for run, seed in enumerate(seeds):
            gen = torch.Generator(device=device)
            gen.manual_seed(int(seed))
            single.initialise(gen, config.layer_noise, config.irbm_noise)
            if single is not network:
                for target, source in zip(network.parameters(), single.parameters()):
                    target[run].copy_(source[0])
    del single
    if init == "mv":
        return network, None
    ds = fit_dawid_skene(data, prior_strength=float(ds_prior))
    network.set_from_dawid_skene(torch.as_tensor(ds.confusion, dtype=torch.float32, device=device),
                                 torch.as_tensor(ds.prior, dtype=torch.float32, device=device))
    return network, ds


def stack_networks(networks: Sequence[DEEMNetwork]) -> DEEMNetwork:
    """One batched network holding the runs of every network in order (same workers, classes, layout and bias;
    networks of different depths give a network of the deepest one's layers whose runs keep their own depths,
    ``DEEMNetwork.run_depths``)."""
    first = networks[0]
    depths = [net.depth_of(run) for net in networks for run in range(net.n_runs)]
    out = DEEMNetwork(len(depths), first.n_workers, first.n_classes, max(depths), **first.spec(),
                      run_depths=depths).to(first.irbm_weight.device)
    with torch.no_grad():
        sources = [dict(net.named_parameters()) for net in networks]
        for name, target in out.named_parameters():
            start = 0
            for net, params in zip(networks, sources):  # slice by slice: no concatenated temporary of the whole
                source = params.get(name)
                if source is not None:  # a shallower network has no such layer: its runs keep the zeros
                    target[start:start + net.n_runs].copy_(source)
                start += net.n_runs
    return out
