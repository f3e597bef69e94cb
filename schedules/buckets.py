"""Aspect-ratio buckets (NovelAI's bucketing as in kohya sd-scripts' `make_bucket_resolutions`). Pure Python.

Every width from `min_side` to `max_side` in steps of `divisible`, paired with the largest height
(also a multiple of `divisible`) whose area fits the pixel budget; plus the square bucket.
"""
from __future__ import annotations

import math


def bucket_resolutions(pixel_budget: int = 1024 * 1024, min_side: int = 256, max_side: int = 2048,
                       divisible: int = 64) -> list[tuple[int, int]]:
    """All (width, height) buckets within the budget, sorted by aspect (width / height)."""
    if pixel_budget < min_side * min_side or min_side < divisible or max_side < min_side:
        raise ValueError(f"no buckets: budget {pixel_budget}, sides {min_side}…{max_side}, multiple of {divisible}")
    side = int(math.isqrt(pixel_budget) // divisible) * divisible
    buckets = {(side, side)}
    for width in range(min_side, max_side + 1, divisible):
        height = min(max_side, (pixel_budget // width) // divisible * divisible)
        if height >= min_side:
            buckets.update({(width, height), (height, width)})
    return sorted(buckets, key=lambda wh: (wh[0] / wh[1], wh[0]))


def nearest_bucket(aspect_width: float, aspect_height: float, pixel_budget: int = 1024 * 1024,
                   min_side: int = 256, max_side: int = 2048, divisible: int = 64) -> tuple[int, int]:
    """The bucket whose aspect is nearest the target in log ratio (so 2:1 and 1:2 are equally far
    from 1:1); ties go to the larger area."""
    if not (aspect_width > 0 and aspect_height > 0):
        raise ValueError(f"aspect ratio sides must be positive, got {aspect_width}:{aspect_height}")
    target = math.log(aspect_width / aspect_height)
    return min(bucket_resolutions(pixel_budget, min_side, max_side, divisible),
               key=lambda wh: (abs(math.log(wh[0] / wh[1]) - target), -wh[0] * wh[1]))
