"""The picture grids of train/evaluate.py (docs/samples.png, docs/guidance-sweep.png): captioned, upscaled cells
pasted into a grid, and the guidance values and prompts of the sweep."""
import textwrap

from PIL import Image, ImageDraw, ImageFont

DECODER_SWEEP = [1, 3, 5, 8, 12]
PRIOR_SWEEP = [1, 2, 4, 8, 12]
SWEEP_PROMPTS = ["a happy dog", "slice of pizza", "flag of Japan"]
FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf"


def font(size):
    try:
        return ImageFont.truetype(FONT, size)
    except OSError:
        return ImageFont.load_default()


def caption_cell(img_path, lines, scale=2, width_chars=21, fnt=None):
    """An upscaled image with text lines (wrapped) under it."""
    fnt = fnt or font(11)
    img = Image.open(img_path).convert("RGB")
    img = img.resize((img.width * scale, img.height * scale), Image.NEAREST)
    wrapped = [w for line in lines for w in (textwrap.wrap(line, width_chars) or [""])]
    line_h = 13
    cell = Image.new("RGB", (img.width, img.height + 4 + line_h * len(wrapped)), "white")
    cell.paste(img, (0, 0))
    d = ImageDraw.Draw(cell)
    for i, t in enumerate(wrapped):
        w = d.textlength(t, font=fnt)
        d.text(((img.width - w) / 2, img.height + 2 + i * line_h), t, fill="black", font=fnt)
    return cell


def paste_grid(rows, gap=6, group_gap=18, group=None, left=None, header=None, title=None):
    """rows: list of lists of PIL images; `group` inserts extra space every `group` columns; left: row labels."""
    fnt = font(12)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    lw = 0 if left is None else max(int(probe.textlength(x, font=fnt)) for s in left for x in s.split("\n")) + 12
    ncol = max(len(r) for r in rows)
    cw = max(c.width for r in rows for c in r)
    rh = [max(c.height for c in r) for r in rows]
    xs = [lw + gap + i * (cw + gap) + (group_gap * (i // group) if group else 0) for i in range(ncol)]
    th = 22 if title else 0
    hh = 18 if header else 0
    W = xs[-1] + cw + gap
    H = th + hh + sum(rh) + gap * (len(rows) + 1)
    canvas = Image.new("RGB", (W, H), "white")
    d = ImageDraw.Draw(canvas)
    if title:
        d.text((gap, 4), title, fill="black", font=font(14))
    if header:
        for i, h in enumerate(header):
            d.text((xs[i] + (cw - d.textlength(h, font=fnt)) / 2, th + 2), h, fill="black", font=fnt)
    y = th + hh + gap
    for r, row in enumerate(rows):
        if left is not None:
            d.text((gap, y + 50), left[r], fill="black", font=fnt)
        for i, c in enumerate(row):
            canvas.paste(c, (xs[i], y))
        y += rh[r] + gap
    return canvas
