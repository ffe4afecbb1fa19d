"""yw-plugin-unig: UniG, a test-time defense that unifies a query batch's feature gradients."""

from yw_plugin_unig.defense import UniG
from yw_plugin_unig.wrapper import UniGWrapper

__all__ = ["UniG", "UniGWrapper"]
