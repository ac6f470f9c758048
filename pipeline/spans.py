"""Which spans are on disk and complete: the ingest stage reads only complete spans.

A span folder counts as complete when it holds the marker file named by `data.complete_marker`;
if the marker's text is a number, it is the span's declared row count and the span counts only
once its CSV files hold that many data rows. So a half-copied span is never read.
"""
from __future__ import annotations

import csv
import glob
import hashlib
import pathlib
import re

from pipeline.config import SPAN_TOKEN, PipelineConfig


class NoCompleteSpan(Exception):
    """There is no complete span to ingest."""


class RefusedSpan(Exception):
    """The span's files must not reach ExampleGen (spans.refused_files); `problems` in the data gate's shape."""

    def __init__(self, span: int, problems: list[dict]):
        super().__init__(f"span {span}: {len(problems)} problem(s) in its files")
        self.problems = problems


PROBLEMS_SHOWN_PER_FILE = 5   # rows named per kind of problem; the rest are counted


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


def file_pattern(config: PipelineConfig) -> str:
    """The span pattern's last part: the data files inside a span's folder."""
    return config.data.span_pattern.rsplit("/", 1)[-1]


def _data_rows(folder: pathlib.Path, pattern: str) -> int:
    """Non-empty lines after each file's header: ExampleGen reads one row per line."""
    rows = 0
    for path in folder.glob(pattern):
        with path.open("rb") as handle:
            rows += max(sum(1 for line in handle if line.strip()) - 1, 0)
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
    return _data_rows(folder, file_pattern(config)) == int(declared)


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


def _csv_problems(path: pathlib.Path, header: list[str] | None) -> tuple[list[str] | None, int, list[dict]]:
    """One streaming pass over a CSV file: its header, its row count, and each row ExampleGen would fail on (not
    UTF-8, unbalanced quotes, a field count unlike the header's) by line number. Types and values are the data
    gate's to judge."""
    problems, counts = [], {}

    def problem(kind: str, details: str):
        counts[kind] = counts.get(kind, 0) + 1
        if counts[kind] <= PROBLEMS_SHOWN_PER_FILE:
            problems.append({"split": "file", "feature": str(path), "problem": kind, "details": details})

    def lines(handle):
        for number, raw in enumerate(handle, 1):
            try:
                yield raw.decode("utf-8")
            except UnicodeDecodeError as error:
                problem("not UTF-8", f"line {number}: byte 0x{raw[error.start]:02x} at column {error.start + 1}")
                yield raw.decode("utf-8", errors="replace")

    file_header, rows, start = None, 0, 1
    with path.open("rb") as handle:
        reader = csv.reader(lines(handle), strict=True)
        try:
            for record in reader:
                if file_header is None:
                    file_header = record
                    if header is not None and record != header:
                        problem("header differs", f"line 1: {record} is not the header of the span's first file {header}")
                        break
                elif reader.line_num > start:
                    problem("malformed CSV", f"line {start}: a quoted field runs over lines {start}-{reader.line_num} "
                                             "(an unbalanced quote? ExampleGen reads one row per line)")
                elif record:
                    rows += 1
                    if len(record) != len(file_header):
                        problem("wrong field count", f"line {start}: {len(record)} fields, the header has {len(file_header)}")
                start = reader.line_num + 1
        except csv.Error as error:
            problem("malformed CSV", f"line {start}: {error} (an unbalanced quote? ExampleGen reads one row per line)")
    if file_header is None:
        problem("empty file", "no header and no rows")
    problems.extend({"split": "file", "feature": str(path), "problem": kind, "details": f"and {count - PROBLEMS_SHOWN_PER_FILE} more rows"}
                    for kind, count in counts.items() if count > PROBLEMS_SHOWN_PER_FILE)
    return file_header, rows, problems


def refused_files(config: PipelineConfig, span: int) -> list[dict]:
    """Why the span must not reach ExampleGen: rows it would fail on, named by file and line (ExampleGen itself
    stops at the first with Beam's error and no file name), no rows, or the same files as an earlier span.
    Empty when none."""
    folder = span_folders(config)[span]
    pattern = file_pattern(config)
    files = sorted(folder.glob(pattern))
    if not files:
        return [{"split": "span", "feature": str(folder), "problem": "no files", "details": f"nothing matches {pattern!r}"}]
    header, rows, problems = None, 0, []
    for path in files:
        file_header, file_rows, problems_in_file = _csv_problems(path, header)
        header, rows = header or file_header, rows + file_rows
        problems.extend(problems_in_file)
    if rows == 0 and not problems:
        problems.append({"split": "span", "feature": str(folder), "problem": "no rows",
                         "details": f"{len(files)} file(s), headers only"})
    for earlier, earlier_folder in span_folders(config).items():
        if earlier < span and _same_bytes(files, sorted(earlier_folder.glob(pattern))):
            problems.append({"split": "span", "feature": str(folder), "problem": "duplicated span",
                             "details": f"its files hold the same bytes as span {earlier}'s ({earlier_folder})"})
    return problems


def check_span(config: PipelineConfig, span: int) -> None:
    """Raises RefusedSpan when refused_files finds a reason: called before ExampleGen reads the span."""
    problems = refused_files(config, span)
    if problems:
        raise RefusedSpan(span, problems)


def _same_bytes(files: list[pathlib.Path], others: list[pathlib.Path]) -> bool:
    """A span delivered twice. Sizes first, so only files of equal size are read."""
    if [f.stat().st_size for f in files] != [f.stat().st_size for f in others]:
        return False

    def digest(path):
        with path.open("rb") as handle:
            return hashlib.file_digest(handle, "sha256").digest()

    return all(digest(a) == digest(b) for a, b in zip(files, others))


def _data_lines(span_folder: pathlib.Path, pattern: str):
    for path in sorted(span_folder.glob(pattern)):
        with path.open("rb") as handle:
            next(handle, None)   # the header
            yield from (line.rstrip(b"\r\n") for line in handle if line.strip())


def copied_rows(config: PipelineConfig, span: int, training_spans: list[int]) -> int:
    """How many of the span's rows are byte for byte rows of the training spans (leakage: a model evaluated on
    rows it learned from looks better than it is). Holds one hash per row of the span, streams the others."""
    folders, pattern = span_folders(config), file_pattern(config)
    rows = {hash(line) for line in _data_lines(folders[span], pattern)}
    copied = set()
    for training_span in training_spans:
        if training_span != span and training_span in folders:
            copied.update(key for key in map(hash, _data_lines(folders[training_span], pattern)) if key in rows)
    return len(copied)
