"""Errors of a training run that a caller may act on."""

from __future__ import annotations


class CheckpointMismatchError(ValueError):
    """A checkpoint at ``checkpoint_path`` was written under other settings.

    Examples
    --------
    >>> from recmodels.trainer import CheckpointMismatchError
    >>> issubclass(CheckpointMismatchError, ValueError)
    True
    """


class TrainingDivergedError(RuntimeError):
    """The loss became NaN or infinite in ``epoch`` (None: unknown); the last good
    checkpoint is kept. ``history`` holds the finished epochs' records and ``seconds`` the
    run's training time up to the failure, resumed sessions included (None: unknown).

    Examples
    --------
    >>> from recmodels import TrainingDivergedError
    >>> TrainingDivergedError("the training loss became nan", epoch=3).epoch
    3
    """

    def __init__(self, message: str, epoch: int | None = None) -> None:
        super().__init__(message)
        self.epoch, self.history, self.seconds = epoch, [], None
