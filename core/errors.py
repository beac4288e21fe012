"""Errors a user can act on. The CLI prints each as one line (no traceback) and exits 2."""

from __future__ import annotations


class TinysplitError(Exception):
    """Base class: str(error) is the one line shown to the user, saying what to do."""


class ToolMissing(TinysplitError):
    """A program tinysplit runs (compiler, QEMU) is not installed."""


class BuildError(TinysplitError):
    """The firmware did not compile or link (or does not fit the board)."""


class PortError(TinysplitError):
    """The serial port does not exist, is busy, or cannot be opened."""


class BoardSilent(TinysplitError):
    """The board did not answer in time."""


class ProtocolError(TinysplitError):
    """The board answered with something the protocol does not allow."""


class ModelMismatch(TinysplitError):
    """The board runs a different model (hash) or protocol version than the host expects."""


class UnsupportedLayer(TinysplitError):
    """The client part of a model has a layer the firmware cannot run."""


class BadInput(TinysplitError):
    """A file or argument given by the user is not usable."""


class NonFiniteGradient(TinysplitError):
    """A loss or gradient is NaN or infinite; nothing was sent to the board."""
