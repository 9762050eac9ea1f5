"""The scoring service: SageMaker's inference contract, a JSON API, and a store of every decision.

Build it with :func:`create_app`; run it with ``preauth serve``.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    from .app import create_app as _create_app

    return _create_app(*args, **kwargs)


__all__ = ["create_app"]
