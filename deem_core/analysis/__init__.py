"""Analysis: statistics of the answers (agreement), the learning-rate recommendation read from energy
curves, and the diagnostics of a fitted model (mutual information, worker importance and quality)."""
