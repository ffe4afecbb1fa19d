"""yw-plugin-logit-noise: Gaussian noise on a classifier's logits, a post-hoc yw defense."""

from yw_plugin_logit_noise.defense import LogitNoise, NoisyLogits

__all__ = ["LogitNoise", "NoisyLogits"]
