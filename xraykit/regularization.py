"""The old name of :mod:`xraykit.runs` (lesson 5 imports it): the same functions, re-exported.

``xraykit.regularization`` read regularization experiments but regularizes nothing; the code
lives in :mod:`xraykit.runs`. New code should import from there.
"""

from xraykit.runs import gap_summary, kernel_weights, summary_table, weight_stats

__all__ = ["gap_summary", "kernel_weights", "summary_table", "weight_stats"]
