"""The emoji catalog: names and groups from Unicode's emoji-test.txt, images from Noto Color Emoji."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

EMOJI_TEST = Path("/usr/share/unicode/emoji/emoji-test.txt")  # Debian: unicode-data
EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # Debian: fonts-noto-color-emoji
FONT_SIZE = 109  # the only size of the font's colour bitmaps
SKIN_TONES = {0x1F3FB, 0x1F3FC, 0x1F3FD, 0x1F3FE, 0x1F3FF}
IMAGE_SIZE = 72


@dataclass
class Emoji:
    codepoints: str  # "1F600" or "1F468-200D-1F4BB"
    char: str
    name: str
    group: str
    subgroup: str


def parse_emoji_test(path: Path = EMOJI_TEST) -> list[Emoji]:
    """Fully-qualified emoji without skin-tone variants, in CLDR order."""
    emoji, group, subgroup = [], "", ""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("# group:"):
            group = line.split(":", 1)[1].strip()
        elif line.startswith("# subgroup:"):
            subgroup = line.split(":", 1)[1].strip()
        elif line and not line.startswith("#"):
            codes, rest = line.split(";", 1)
            status, comment = rest.split("#", 1)
            points = [int(c, 16) for c in codes.split()]
            if status.strip() != "fully-qualified" or SKIN_TONES & set(points):
                continue
            # comment: " 😀 E1.0 grinning face"
            name = comment.strip().split(" ", 2)[2]
            emoji.append(Emoji("-".join(f"{p:04X}" for p in points), "".join(map(chr, points)), name, group, subgroup))
    return emoji


def render(char: str, font: ImageFont.FreeTypeFont, size: int = IMAGE_SIZE) -> Image.Image | None:
    """The emoji centred on white, size x size; None when the font draws it as several glyphs."""
    canvas = Image.new("RGBA", (FONT_SIZE * 4, FONT_SIZE * 2), (0, 0, 0, 0))
    ImageDraw.Draw(canvas).text((FONT_SIZE // 2, FONT_SIZE // 2), char, font=font, embedded_color=True)
    box = canvas.getbbox()
    if box is None:
        return None
    width, height = box[2] - box[0], box[3] - box[1]
    if width > 1.4 * FONT_SIZE or height > 1.4 * FONT_SIZE:  # a sequence the font cannot join
        return None
    glyph = canvas.crop(box)
    side = max(width, height)
    square = Image.new("RGBA", (side, side), (255, 255, 255, 255))
    square.alpha_composite(glyph, ((side - width) // 2, (side - height) // 2))
    return square.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)


def build_images(out_dir: Path) -> list[dict]:
    """Render every emoji the font can draw; return their rows (name, group, subgroup; no split yet)."""
    font = ImageFont.truetype(str(EMOJI_FONT), FONT_SIZE)
    out_dir.mkdir(parents=True, exist_ok=True)
    drawn = []
    for e in parse_emoji_test():
        image = render(e.char, font)
        if image is not None:
            image.save(out_dir / f"{e.codepoints}.webp", lossless=True, quality=100, method=4)
            drawn.append(e)
    return [{"image_id": e.codepoints, "image_uri": f"images/{e.codepoints}.webp", "caption": e.name,
             "category": e.group, "subcategory": e.subgroup, "emoji": e.char} for e in drawn]
