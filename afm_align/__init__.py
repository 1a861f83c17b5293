"""afm-align core: row contracts, dataset store, run directory, configs, metrics logs, the tiny base model, the CLI."""
__version__ = "0.1.0"
