"""The error type and the statistics table shared by the data modules."""

import math


class DataError(ValueError):
    """A data set is missing, corrupt, malformed, or filtered down to nothing.

    The message always says what went wrong and what to do about it (which file to
    delete, which URL to download by hand, which filter removed everything).
    """


def part_stats(n_users, n_items, n_interactions, n_active_items):
    """Count and density of one users-by-items part.

    Parameters
    ----------
    n_users, n_items : int
        Shape of the part, (users, items).
    n_interactions : int
        Number of non-zero entries.
    n_active_items : int
        Number of items with at least one interaction.

    Returns
    -------
    dict
        ``users``, ``items``, ``active_items``, ``interactions`` and
        ``density = interactions / (users * items)`` (0 for an empty shape).
    """
    cells = n_users * n_items
    return {
        "users": int(n_users),
        "items": int(n_items),
        "active_items": int(n_active_items),
        "interactions": int(n_interactions),
        "density": n_interactions / cells if cells else 0.0,
    }


def format_stats(rows):
    """Render ``{part name: part_stats(...)}`` as a small fixed-width table."""
    header = ("part", "users", "items", "active items", "interactions", "density")
    lines = [header]
    for name, s in rows.items():
        density = s["density"]
        lines.append((
            name,
            f"{s['users']:,}",
            f"{s['items']:,}",
            f"{s['active_items']:,}",
            f"{s['interactions']:,}",
            f"{100 * density:.3f}%" if math.isfinite(density) else "-",
        ))
    widths = [max(len(row[j]) for row in lines) for j in range(len(header))]
    # Names read best left-aligned, numbers right-aligned so their digits line up.
    return "\n".join(
        "  ".join(cell.ljust(w) if j == 0 else cell.rjust(w)
                  for j, (cell, w) in enumerate(zip(row, widths)))
        for row in lines
    )
