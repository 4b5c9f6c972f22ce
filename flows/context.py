"""The pipeline (and reading processes) each flow run in this process works with, per config file.

Apart from :mod:`flows.intake` so that the review flow, which intake hands documents to, can reach the
same pipeline without importing intake back."""

from __future__ import annotations

from frontdesk.pipeline import Pipeline
from frontdesk.readers import ReadingPool

_PIPELINES: dict[str | None, Pipeline] = {}
_READERS: dict[str | None, ReadingPool] = {}


def pipeline_for(config_file: str | None) -> Pipeline:
    """One pipeline per process and config: templates and vocabulary load once, not per task."""
    if config_file not in _PIPELINES:
        from frontdesk.settings import load_settings

        _PIPELINES[config_file] = Pipeline(load_settings(config_file))
    return _PIPELINES[config_file]


def readers_for(config_file: str | None) -> ReadingPool | None:
    """The reading processes document tasks hand their documents to; None: read in this process."""
    return _READERS.get(config_file)


def use_pipeline(pipeline: Pipeline, config_file: str | None = None, *, readers: ReadingPool | None = None) -> None:
    """Let the CLI (or a test, or the watcher) hand the flow a pipeline it already built, and the reading
    processes its document tasks hand their documents to (none: read in this process)."""
    _PIPELINES[config_file] = pipeline
    if readers is not None:
        _READERS[config_file] = readers
    else:
        _READERS.pop(config_file, None)
