# check_*.py, not test_*.py: the repository's own test run must not collect it; the
# dataset builder names it to pytest explicitly.

import pytest
from tinypkg import stats


def test_mean():
    assert stats.mean([1, 2, 3]) == 2


def test_mean_of_nothing():
    with pytest.raises(ValueError):
        stats.mean([])


def test_head():
    assert stats.head([1, 2, 3], 2) == [1, 2]


def test_head_keeps_no_docstring():
    # Makes one clean edit (a docstring for head) fail, so the builder must leave it out.
    assert stats.head.__doc__ is None
