"""Byte counts as people read them, for messages."""


def human_bytes(n: int) -> str:
    """1536 -> '1.5 KB', 20971520 -> '20 MB' (binary units, short and plain)."""
    value = float(n)
    for unit in ("bytes", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            if unit == "bytes":
                return f"{int(value)} bytes"
            return f"{value:.1f} {unit}".replace(".0 ", " ")
        value /= 1024
    return f"{value:.1f} GB"
