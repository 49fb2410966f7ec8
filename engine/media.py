"""Reading the pictures people send, and shaping stickers for sending.

(Decoding of every sticker format, with limits, is added here by the media work.)
"""

from __future__ import annotations

from PIL import Image

STICKER_SIZE = 512


def fit_square(image: Image.Image, size: int = STICKER_SIZE) -> Image.Image:
    """Crop transparent margins, pad to a square and resize to `size` (RGBA)."""
    rgba = image.convert("RGBA")
    box = rgba.getchannel("A").getbbox()
    if box:
        rgba = rgba.crop(box)
    side = max(rgba.size)
    canvas = Image.new("RGBA", (side, side), (0, 0, 0, 0))
    canvas.paste(rgba, ((side - rgba.width) // 2, (side - rgba.height) // 2))
    return canvas.resize((size, size), Image.Resampling.LANCZOS)
