"""Only complete spans are read: the marker file must be there, with its declared row count met."""
import pytest

from pipeline.config import load_config
from pipeline.spans import NoCompleteSpan, complete_spans, newest_complete_span
from project_helpers import write_config, write_span


@pytest.fixture
def project(tmp_path, taxi_rows):
    header, rows = taxi_rows
    write_span(tmp_path, 1, header, rows[:20])
    write_span(tmp_path, 2, header, rows[20:40], complete=False)            # still being copied
    half = write_span(tmp_path, 3, header, rows[40:50])
    (half / "_SUCCESS").write_text("25\n")                                   # declared 25, 10 there so far
    untold = write_span(tmp_path, 11, header, rows[50:60], complete=False)
    (untold / "_SUCCESS").write_text("")                                     # marker without a count
    (tmp_path / "data" / "not-a-span").mkdir()
    return tmp_path


def test_complete_spans_need_the_marker_and_the_declared_rows(project):
    config = load_config(write_config(project))
    assert complete_spans(config) == [1, 11]
    assert newest_complete_span(config) == 11


def test_a_span_becomes_complete_when_its_rows_arrive(project, taxi_rows):
    header, rows = taxi_rows
    write_span(project, 3, header, rows[40:65], complete=False)             # the rest of the copy lands
    assert complete_spans(load_config(write_config(project))) == [1, 3, 11]


def test_no_complete_span_is_a_clear_error(tmp_path, taxi_rows):
    header, rows = taxi_rows
    write_span(tmp_path, 1, header, rows[:5], complete=False)
    with pytest.raises(NoCompleteSpan, match=r"no complete span matching 'span-\{SPAN:2\}/\*.csv'.*'_SUCCESS'"):
        newest_complete_span(load_config(write_config(tmp_path)))


def test_without_a_marker_setting_every_span_folder_counts(tmp_path, taxi_rows):
    header, rows = taxi_rows
    write_span(tmp_path, 4, header, rows[:5], complete=False)
    assert complete_spans(load_config(write_config(tmp_path, {"data": {"complete_marker": None}}))) == [4]
