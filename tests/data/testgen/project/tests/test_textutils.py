import pytest

from textutils import clamp


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_clamp_rejects_an_empty_range():
    with pytest.raises(ValueError):
        clamp(0, 1, 0)
