"""Aggregation methods: DEEM (the estimator), Dawid-Skene, majority vote and the crowd-kit methods."""
