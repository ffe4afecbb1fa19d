"""yw-plugin-ugsep: RankMixer and UG-Sep recommendation models, with W8A16 serving."""

from yw_plugin_ugsep.methods import RankMixer, RankMixerConfig, UGSep, UGSepConfig
from yw_plugin_ugsep.model import RankMixerNet
from yw_plugin_ugsep.quant import Int8PerTokenFFN, quantize_int8, quantize_model

__all__ = [
    "Int8PerTokenFFN",
    "RankMixer",
    "RankMixerConfig",
    "RankMixerNet",
    "UGSep",
    "UGSepConfig",
    "quantize_int8",
    "quantize_model",
]
