"""Row ids as they come from an address or a form."""

# The largest integer PostgreSQL and SQLite hold (a signed 64-bit one): the largest id, and
# the largest LIMIT and OFFSET they take.
LARGEST_INTEGER = 2**63 - 1


def row_id(value: str | None) -> int | None:
    """`value` as a row id, or None for anything that cannot be one: "²" is a digit to
    str.isdigit but not to int, and a longer number than 64 bits fits no table."""
    if value and value.isascii() and value.isdigit() and int(value) <= LARGEST_INTEGER:
        return int(value)
    return None
