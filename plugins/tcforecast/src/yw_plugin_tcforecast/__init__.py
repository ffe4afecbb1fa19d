"""yw-plugin-tcforecast: technology-convergence forecasting from patents (arXiv 2604.00803)."""

from yw_plugin_tcforecast.methods import TCForecast, TCForecastConfig

__all__ = ["TCForecast", "TCForecastConfig"]
