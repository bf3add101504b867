"""Aggregation methods behind one interface (:mod:`.base`) and one registry (:mod:`.registry`): DEEM (the
estimator, :mod:`.deem`; iRBM is DEEM without layers), Dawid-Skene, majority vote and the crowd-kit methods."""
