"""The AFM multi-head reward model: model, pure losses, TRL trainer, scorer (a TRL reward function), metrics.

Importing the package registers `MultiHeadRewardConfig` / `MultiHeadRewardModel` with the transformers Auto
classes, so `AutoModel.from_pretrained(rm_dir)` works after `import reward_model`.
"""
from reward_model import model as _model  # noqa: F401  (registers the Auto classes)
