"""Pure schedule maths: ZTSNR rescale, terminal sigmas, resolution-scaled σ_max, schedule shapes.

Nothing in this package imports comfy; it runs with torch alone.
"""
