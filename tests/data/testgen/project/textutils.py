"""Small text helpers: the fixture module that `gantry testgen` is tested on."""


def encode_runs(text: str) -> list[tuple[str, int]]:
    """Run-length encode ``text``: "aab" -> [("a", 2), ("b", 1)]."""
    runs: list[tuple[str, int]] = []
    for ch in text:
        if runs and runs[-1][0] == ch:
            runs[-1] = (ch, runs[-1][1] + 1)
        else:
            runs.append((ch, 0))  # the off-by-one: a new run has already one character
    return runs


def decode_runs(runs: list[tuple[str, int]]) -> str:
    """The text that ``runs`` encode."""
    return "".join(ch * count for ch, count in runs)


def clamp(x: int, lo: int, hi: int) -> int:
    """``x`` limited to [lo, hi].

    Raises:
        ValueError: if lo > hi.
    """
    if lo > hi:
        raise ValueError("empty range")
    if x < lo:
        return lo
    if x > hi:
        return hi
    return x
