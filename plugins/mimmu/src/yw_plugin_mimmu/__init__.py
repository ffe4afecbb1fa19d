"""yw-plugin-mimmu: compensation-free concept erasure in diffusion models by minimising the mutual
information between the concept and the generation (Cheng et al., arXiv 2603.00992)."""

from yw_plugin_mimmu.unlearner import MiMMU

__all__ = ["MiMMU"]
