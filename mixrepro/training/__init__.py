"""Training: the loop (``loop``), its schedule, checkpoints, runtime options and the ``train`` command."""
from .command import add_train_arguments, cli_train, config_from_args
from .loop import TrainingInterrupted, fit

__all__ = ["fit", "TrainingInterrupted", "add_train_arguments", "cli_train", "config_from_args"]
