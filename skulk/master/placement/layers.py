"""Pipeline layer split: proportional to each node's usable memory, largest remainder."""

from collections.abc import Sequence


def allocate_layers(total_layers: int, weights: Sequence[int]) -> list[int]:
    """Layers per rank, summing to `total_layers`, each rank at least one.

    Integer arithmetic throughout so the split never depends on float rounding.
    """
    count = len(weights)
    if count == 0:
        raise ValueError("cannot allocate layers to zero nodes")
    if total_layers < count:
        raise ValueError(f"cannot split {total_layers} layer(s) across {count} nodes")
    shares = [max(0, w) for w in weights]
    whole = sum(shares)
    if whole == 0:
        shares, whole = [1] * count, count  # nothing to weigh by: split evenly
    layers = [total_layers * s // whole for s in shares]
    remainders = [total_layers * s % whole for s in shares]
    leftover = total_layers - sum(layers)
    for i in sorted(range(count), key=lambda i: (-remainders[i], i))[:leftover]:
        layers[i] += 1
    for i in range(count):
        if layers[i] == 0:  # a rank with no layers would idle in the ring: borrow one
            donor = max(range(count), key=lambda j: (layers[j], -j))
            layers[donor] -= 1
            layers[i] = 1
    return layers


def layer_ranges(layers: Sequence[int]) -> list[tuple[int, int]]:
    """[start, end) per rank for contiguous pipeline stages in rank order."""
    ranges, start = [], 0
    for count in layers:
        ranges.append((start, start + count))
        start += count
    return ranges
