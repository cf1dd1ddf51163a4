"""Models for the batch tests, importable as ``batch_helpers:<function>`` model specs."""

from __future__ import annotations

import time

import numpy as np

from xai.adapters import CallableAdapter
from xai.batch import LoadedModel, load_model


def slow_credit() -> LoadedModel:
    """The demo credit model, 0.05 s slower per model call (so a job can be killed midway)."""
    loaded = load_model("demo-credit")
    pipe = loaded.model
    predict = pipe.predict_proba

    def slow(x):  # type: ignore[no-untyped-def]
        time.sleep(0.05)
        return predict(x)

    pipe.predict_proba = slow
    return loaded


class Interrupt(BaseException):
    """Stands for a kill: not an Exception, so no row catches it."""


def fragile_linear(fail_on: float = 13.0, interrupt_after: int | None = None) -> CallableAdapter:
    """f(x) = x @ [1, 2, 3] that raises ValueError on rows whose first value is ``fail_on``.

    With ``interrupt_after``, the call after that many raises `Interrupt` (a simulated kill).
    """
    calls = {"n": 0}

    def f(x: np.ndarray) -> np.ndarray:
        calls["n"] += 1
        if interrupt_after is not None and calls["n"] > interrupt_after:
            raise Interrupt
        if bool((x[:, 0] == fail_on).any()):
            msg = f"cannot score a row with x0={fail_on}"
            raise ValueError(msg)
        return x @ np.array([1.0, 2.0, 3.0])

    return CallableAdapter(f, n_features=3)


def broken_model() -> LoadedModel:
    """A model entry point with a bug of its own (not a user mistake)."""
    msg = "the model's own bug"
    raise RuntimeError(msg)
