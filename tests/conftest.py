import pytest

from project_helpers import TAXI, read_rows


@pytest.fixture(scope="session")
def taxi_rows():
    """Header and rows of one real quarter (2014Q2, span 6), reused by the pipeline tests."""
    return read_rows(TAXI / "span-06" / "data.csv")
