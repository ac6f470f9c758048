"""Which spans are on disk and complete: the ingest stage reads only complete spans.

A span folder counts as complete when it holds the marker file named by `data.complete_marker`;
if the marker's text is a number, it is the span's declared row count and the span counts only
once its CSV files hold that many data rows. So a half-copied span is never read.
"""
from __future__ import annotations

import csv
import glob
import pathlib
import re

from pipeline.config import SPAN_TOKEN, PipelineConfig


class NoCompleteSpan(Exception):
    """There is no complete span to ingest."""


def span_folders(config: PipelineConfig) -> dict[int, pathlib.Path]:
    """Span number → folder, for every folder that the span pattern's directory part matches."""
    base = config.path(config.data.base)
    folder_pattern = config.data.span_pattern.rsplit("/", 1)[0] if "/" in config.data.span_pattern else ""
    before, after = SPAN_TOKEN.split(str(base / folder_pattern))
    matcher = re.compile(re.escape(before).replace(r"\*", "[^/]*") + r"(\d+)" + re.escape(after).replace(r"\*", "[^/]*"))
    folders = {}
    for path in glob.glob(f"{before}*{after}"):
        match = matcher.fullmatch(path)
        if match:
            folders[int(match.group(1))] = pathlib.Path(path)
    return dict(sorted(folders.items()))


def _data_rows(folder: pathlib.Path, file_pattern: str) -> int:
    rows = 0
    for path in folder.glob(file_pattern):
        with path.open(newline="", errors="replace") as handle:
            rows += max(sum(1 for _ in csv.reader(handle)) - 1, 0)  # minus the header
    return rows


def is_complete(config: PipelineConfig, folder: pathlib.Path) -> bool:
    marker_name = config.data.complete_marker
    if marker_name is None:
        return True
    marker = folder / marker_name
    if not marker.is_file():
        return False
    declared = marker.read_text().strip()
    if not declared.isdigit():
        return True
    file_pattern = config.data.span_pattern.rsplit("/", 1)[-1]
    return _data_rows(folder, file_pattern) == int(declared)


def complete_spans(config: PipelineConfig) -> list[int]:
    return [span for span, folder in span_folders(config).items() if is_complete(config, folder)]


def newest_complete_span(config: PipelineConfig) -> int:
    spans = complete_spans(config)
    if not spans:
        marker = config.data.complete_marker
        raise NoCompleteSpan(
            f"data.base {config.path(config.data.base)}: no complete span matching {config.data.span_pattern!r}"
            + (f" (a span is complete once its folder holds the marker file {marker!r})" if marker else ""))
    return spans[-1]
