"""A tiny package served by berth's local package index, to show dependencies without PyPI."""

__version__ = "0.1.0"


def summarize(rows, group_by, value):
    """Return {group: (count, total)} over rows (dicts) grouped by one column."""
    out = {}
    for row in rows:
        key = row[group_by]
        count, total = out.get(key, (0, 0.0))
        out[key] = (count + 1, total + float(row[value]))
    return out
