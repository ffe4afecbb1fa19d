"""yw-plugin-baselines: the baselines the yw method papers compare against."""

from yw_plugin_baselines.noise import RND, NoisyModel, OutputNoise

__all__ = ["NoisyModel", "OutputNoise", "RND"]
