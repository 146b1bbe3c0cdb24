"""Test images drawn in the test: printed text, colour blocks."""

from PIL import Image, ImageDraw, ImageFont

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"


def font(size: int):
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:  # no DejaVu: Pillow's own scalable font
        return ImageFont.load_default(size)


def printed_text(text: str, size=(720, 200), background="white", ink="black", font_size=64) -> Image.Image:
    image = Image.new("RGB", size, background)
    ImageDraw.Draw(image).text((30, (size[1] - font_size) // 2), text, fill=ink, font=font(font_size))
    return image


def colour_blocks(blocks: list[tuple[tuple[int, int, int], float]], size=(200, 100)) -> Image.Image:
    """Vertical stripes, each colour over its share of the width."""
    image = Image.new("RGB", size)
    draw, x = ImageDraw.Draw(image), 0
    for colour, share in blocks:
        width = round(share * size[0])
        draw.rectangle([x, 0, x + width - 1, size[1] - 1], fill=colour)
        x += width
    return image
