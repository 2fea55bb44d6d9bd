"""``torch``, imported when it is first used: the app serves its page before torch (about 1.4 s of a
2-core machine's start, ``python -m bench.bench_start``) has loaded.

The modules the app needs to lay out its page write ``from .lazy import torch`` and then use ``torch.…`` as
usual; the first attribute read imports the real module, normally on the app's compute thread while the
browser loads the page. Python's import lock makes a first use from two threads at once safe: one imports,
the other waits. The idea of Scientific Python's SPEC 1 (lazy loading of submodules), for one module.
Module-level code in those modules must not read ``torch.…`` (``@no_grad`` below instead of
``@torch.no_grad()``; no base classes from torch), or the import happens at once again;
``tests/test_app.py`` checks that building the app leaves torch unloaded.
"""
from __future__ import annotations

import functools
import importlib
import types
from typing import TYPE_CHECKING, Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])


class LazyModule(types.ModuleType):
    """Stands for the module named ``name`` and imports it on the first attribute read."""

    def __getattr__(self, attr: str) -> Any:      # called only for names the stand-in does not hold yet
        value = getattr(importlib.import_module(self.__name__), attr)
        setattr(self, attr, value)                # read once: later reads are plain attribute reads
        return value


if TYPE_CHECKING:
    import torch
else:
    torch = LazyModule("torch")


def no_grad(fn: F) -> F:
    """``@torch.no_grad()`` that reads ``torch`` when ``fn`` runs, not when it is defined."""
    @functools.wraps(fn)
    def call(*args: Any, **kwargs: Any) -> Any:
        with torch.no_grad():
            return fn(*args, **kwargs)
    return call  # type: ignore[return-value]
