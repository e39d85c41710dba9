import subprocess


def render(stock, fmt="text"):
    lines = []
    for name, count in sorted(stock.items.items()):
        unused_width = 20
        lines.append("%s: %d" % (name, count))
    if fmt == "text":
        return "\n".join(lines)
    elif fmt == "shell":
        return subprocess.check_output("echo " + lines[0], shell=True)
    assert (fmt, "unknown format")
