"""Rolling usage windows, pure: bucketed counters folded in by apply(), read by the limiter and routes."""

import math

from skulk.types.projects import MAX_USAGE_SERIES, UsageBucket, UsageSeries

# (field of UsageSeries, bucket width in seconds, how many buckets it keeps)
RESOLUTIONS = (("seconds", 1, 60), ("minutes", 60, 60), ("hours", 3600, 24))
WINDOWS = {"1m": 60, "1h": 3600, "24h": 86400}
COUNTS = ("requests", "prompt_tokens", "completion_tokens", "rejections")


def key_series(key_id: str) -> str:
    return f"key:{key_id}"


def project_series(project: str) -> str:
    return f"project:{project}"


def _bump(bucket: UsageBucket, deltas: dict[str, int]) -> UsageBucket:
    return bucket.model_copy(update={k: getattr(bucket, k) + v for k, v in deltas.items()})


def _add(buckets: tuple[UsageBucket, ...], start: int, width: int, keep: int,
         deltas: dict[str, int]) -> tuple[UsageBucket, ...]:
    kept = [b for b in buckets if b.start > start - width * (keep + 1)]  # +1: a window's partial oldest slice
    for i, b in enumerate(kept):
        if b.start == start:
            kept[i] = _bump(b, deltas)
            return tuple(kept)
    kept.append(_bump(UsageBucket(start=start), deltas))
    return tuple(sorted(kept, key=lambda b: b.start))


def record(series: UsageSeries | None, at: int, **deltas: int) -> UsageSeries:
    """`series` with `deltas` (requests=1, prompt_tokens=..) counted at unix second `at`."""
    series = series or UsageSeries()
    deltas = {k: v for k, v in deltas.items() if k in COUNTS and v}
    update: dict = {"touched": max(series.touched, at), "total": _bump(series.total, deltas)}
    for name, width, keep in RESOLUTIONS:
        update[name] = _add(getattr(series, name), at - at % width, width, keep, deltas)
    return series.model_copy(update=update)


def record_all(usage: dict[str, UsageSeries], names: list[str], at: int, **deltas: int) -> dict[str, UsageSeries]:
    """`usage` with `deltas` added to each named series; past the cap the idlest series is dropped."""
    out = dict(usage)
    for name in names:
        out[name] = record(out.get(name), at, **deltas)
    while len(out) > MAX_USAGE_SERIES:
        idlest = min((n for n in out if n not in names), key=lambda n: out[n].touched, default=None)
        if idlest is None:
            break
        del out[idlest]
    return out


def window(series: UsageSeries | None, now: float, seconds: int) -> dict[str, int]:
    """Counts in the last `seconds` before `now`, from the finest resolution that covers it."""
    counts = dict.fromkeys(COUNTS, 0)
    if series is None:
        return counts
    name, width, _ = next(r for r in RESOLUTIONS if r[1] * r[2] >= seconds)
    for b in getattr(series, name):
        if b.start + width > now - seconds and b.start <= now:
            for k in COUNTS:
                counts[k] += getattr(b, k)
    return counts


def windows(series: UsageSeries | None, now: float) -> dict[str, dict[str, int]]:
    return {label: window(series, now, seconds) for label, seconds in WINDOWS.items()}


def seconds_until_room(series: UsageSeries | None, now: float, fields: tuple[str, ...], over: int) -> int:
    """Seconds until the 1-minute count of `fields` (summed) drops by `over` (at least 1)."""
    if series is None or over <= 0:
        return 1
    dropped = 0
    for b in series.seconds:  # oldest first
        if b.start + 1 <= now - 60:
            continue
        dropped += sum(getattr(b, f) for f in fields)
        if dropped >= over:
            return max(1, math.ceil(b.start + 61 - now))  # the bucket leaves the window at start + 61
    return 60
