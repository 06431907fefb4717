"""The one training loop, checkpoints, resume and the ``train`` command (implemented in ``mixrepro.training``)."""
from .training import TrainingInterrupted, add_train_arguments, cli_train, config_from_args, fit

__all__ = ["fit", "TrainingInterrupted", "add_train_arguments", "cli_train", "config_from_args"]
