"""Pure sampling maths (noise, guidance, prediction conversions). Nothing here imports comfy."""
