"""yw-plugin-attacks: the standard evaluation attacks, each counting queries per sample."""

from yw_plugin_attacks.adaptive import BiSquare, UpSquare
from yw_plugin_attacks.bandits import Bandits
from yw_plugin_attacks.nes import NES
from yw_plugin_attacks.signhunter import SignHunter
from yw_plugin_attacks.simba import SimBA
from yw_plugin_attacks.square import Square
from yw_plugin_attacks.whitebox import FGSM, FGSMRS, PGD

__all__ = [
    "Bandits",
    "BiSquare",
    "FGSM",
    "FGSMRS",
    "NES",
    "PGD",
    "SignHunter",
    "SimBA",
    "Square",
    "UpSquare",
]
