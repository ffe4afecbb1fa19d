"""yw-plugin-las: online continual learning via logit adjusted softmax (ER-LAS, MIR-LAS)."""

from yw_plugin_las.learner import ERLAS, MIRLAS
from yw_plugin_las.prior import LogitAdjuster

__all__ = ["ERLAS", "MIRLAS", "LogitAdjuster"]
