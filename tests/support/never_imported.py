"""A model module that the API must not import for a caller who may not name it (the tests
check that it stays out of ``sys.modules``)."""

from __future__ import annotations

from tests.support.plugin_models import CentroidClassifier

__all__ = ["Model"]


class Model(CentroidClassifier):
    """A valid plugin: refusing it is about who asks, not what it is."""
