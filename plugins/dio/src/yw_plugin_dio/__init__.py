"""yw-plugin-dio: DIO, orthogonal multi-path heads with a random path at inference."""

from yw_plugin_dio.defense import DIO
from yw_plugin_dio.heads import OrthoHeads, margin_loss
from yw_plugin_dio.losses import DIOLoss, mean_path_ce, mean_path_kl
from yw_plugin_dio.model import DIONet

__all__ = ["DIO", "DIOLoss", "DIONet", "OrthoHeads", "margin_loss", "mean_path_ce", "mean_path_kl"]
