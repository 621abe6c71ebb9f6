"""Structured formats other tools read and write: Label Studio JSON, a Hugging Face parquet
folder, spaCy-style JSONL, and for span projects CoNLL / IOB and JSONL with character
offsets (`conll`).

Each module has a reader yielding ``(line, row, error)`` like the readers of
:mod:`activelabel.labeling.imports`, whose rows are *canonical rows* (``external_id``,
``data``, ``split``, ``gold_labels``, ``annotations``, ``predictions``): the labels the file
already holds travel with the items. The writers turn the export's rows
(:func:`activelabel.labeling.export.export_rows`) into the tool's format. No module here
touches the database: the readers read files, the writers are handed rows and the project's
description (:class:`ExportContext`).
"""

from __future__ import annotations

from ._common import ExportContext, Parsed

__all__ = ["ExportContext", "Parsed"]
