"""PIL figures for the latent-space commands: labelled walk grids and GIFs, the
numbered sample sheet, the vector-arithmetic figure. Images come in as [-1, 1]
tensors; tiles are upscaled (nearest neighbour) so small images stay readable,
and are never drawn on: labels go in margins, so a tile's pixels are exactly
G's sample (the sheet's index round-trips on that). PNG writing, the font and tiles are
:mod:`gan_probe.figures`."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from PIL import Image, ImageDraw

from gan_probe.figures import font, tile
from gan_probe.io import atomic_path
from gan_probe.sampling import to_uint8

BACKGROUND = (255, 255, 255)
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)
GAP = 4  # pixels between tiles
ENDPOINT = (40, 90, 200)  # frame around a walk's endpoints (real samples of the seed)
ALERT = (210, 30, 30)  # sharp transitions, the arithmetic result


def tile_scale(image_size: int, target: int = 96) -> int:
    """Integer upscale factor bringing a tile to about ``target`` pixels."""
    return max(1, target // image_size)


def to_tiles(images: torch.Tensor, scale: int) -> list[Image.Image]:
    """N x C x H x W in [-1, 1] -> N RGB PIL images, upscaled ``scale`` x (nearest)."""
    return [tile(arr, scale) for arr in to_uint8(images)]


def text_width(draw: ImageDraw.ImageDraw, text: str, f) -> int:
    left, _, right, _ = draw.textbbox((0, 0), text, font=f)
    return right - left


def _measure(texts: list[str], f) -> int:
    d = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    return max((text_width(d, t, f) for t in texts), default=0)


def save_gif(frames: list[Image.Image], path: str | os.PathLike, durations: list[int]) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        frames[0].save(tmp, format="GIF", save_all=True, append_images=frames[1:], duration=durations, loop=0)
    return path


def _frame(draw: ImageDraw.ImageDraw, x: int, y: int, w: int, h: int, colour, width: int = 2) -> None:
    draw.rectangle([x - width, y - width, x + w + width - 1, y + h + width - 1], outline=colour, width=width)


# ---------------------------------------------------------------- walk
def walk_figure(frames: torch.Tensor, labels: list[str], notes: list[str], sharp_steps: list[int | None],
                title: str, scale: int) -> Image.Image:
    """rows x steps grid: a row label on the left, a note on the right (largest jump),
    endpoints framed in blue, a sharp step marked by a red bar between its two frames."""
    rows, steps = frames.shape[:2]
    tiles = to_tiles(frames.flatten(0, 1), scale)
    tw, th = tiles[0].size
    f, fb = font(13), font(15)
    left = _measure(labels, f) + 16
    header = f"jump = step / endpoint distance (even: {1 / (steps - 1):.2f})"
    right = _measure(notes + [header], f) + 16
    top = 34
    notes_x = left + steps * (tw + GAP) + 6
    header_x = max(notes_x, _measure([title], fb) + 24)
    width = max(left + steps * (tw + GAP) + right, header_x + _measure([header], f) + 10)
    height = top + rows * (th + GAP) + 8
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((8, 8), title, fill=TEXT, font=fb)
    draw.text((header_x, 10), header, fill=MUTED, font=f)
    for r in range(rows):
        y = top + r * (th + GAP)
        draw.text((8, y + th // 2 - 7), labels[r], fill=TEXT, font=f)
        for j in range(steps):
            x = left + j * (tw + GAP)
            canvas.paste(tiles[r * steps + j], (x, y))
        for j in (0, steps - 1):
            _frame(draw, left + j * (tw + GAP), y, tw, th, ENDPOINT)
        k = sharp_steps[r]
        if k is not None:
            x = left + (k + 1) * (tw + GAP) - GAP // 2 - 2
            draw.rectangle([x, y, x + 3, y + th - 1], fill=ALERT)
        note_colour = ALERT if k is not None else MUTED
        draw.text((notes_x, y + th // 2 - 7), notes[r], fill=note_colour, font=f)
    return canvas


def walk_gif_frames(frames: torch.Tensor, labels: list[str], scale: int) -> tuple[list[Image.Image], list[int]]:
    """Every row's walk played side by side, forward then back (so it loops smoothly);
    the endpoints are held a little longer."""
    rows, steps = frames.shape[:2]
    cols = max(1, min(rows, 4))
    grid_rows = -(-rows // cols)
    tiles = to_tiles(frames.flatten(0, 1), scale)
    tw, th = tiles[0].size
    f = font(12)
    cap = 18
    order = list(range(steps)) + list(range(steps - 2, 0, -1))
    out, durations = [], []
    for j in order:
        canvas = Image.new("RGB", (cols * (tw + GAP) + GAP, grid_rows * (th + cap + GAP) + GAP + cap), BACKGROUND)
        draw = ImageDraw.Draw(canvas)
        draw.text((GAP, 2), f"t = {j / (steps - 1):.2f}", fill=TEXT, font=f)
        for r in range(rows):
            x = GAP + (r % cols) * (tw + GAP)
            y = cap + GAP + (r // cols) * (th + cap + GAP)
            canvas.paste(tiles[r * steps + j], (x, y))
            draw.text((x, y + th + 1), labels[r][: max(4, tw // 7)], fill=MUTED, font=f)
        out.append(canvas)
        durations.append(600 if j in (0, steps - 1) else 120)
    return out, durations


# ---------------------------------------------------------------- sheet
def sheet_figure(images: torch.Tensor, start: int, cols: int, scale: int,
                 title: str) -> tuple[Image.Image, list[list[int]]]:
    """Samples numbered ``start``..: each tile with its index under it. Returns the
    figure and each tile's box [x0, y0, x1, y1] (exclusive ends) in it."""
    tiles = to_tiles(images, scale)
    tw, th = tiles[0].size
    f, fb = font(13), font(15)
    cap = 18
    top = 32
    rows = -(-len(tiles) // cols)
    canvas = Image.new("RGB", (cols * (tw + GAP) + GAP, top + rows * (th + cap + GAP)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, 8), title, fill=TEXT, font=fb)
    boxes = []
    for k, im in enumerate(tiles):
        x = GAP + (k % cols) * (tw + GAP)
        y = top + (k // cols) * (th + cap + GAP)
        canvas.paste(im, (x, y))
        label = f"#{start + k}"
        draw.text((x + (tw - text_width(draw, label, f)) // 2, y + th + 1), label, fill=TEXT, font=f)
        boxes.append([x, y, x + tw, y + th])
    return canvas, boxes


# ---------------------------------------------------------------- arithmetic
def arithmetic_figure(concepts: list[tuple[str, list[int], torch.Tensor, torch.Tensor]],
                      result_grid: torch.Tensor, pixel_means: torch.Tensor, pixel_result: torch.Tensor,
                      title: str, noise: float, scale: int) -> Image.Image:
    """Paper Fig. 7 layout. ``concepts``: (name, indices, exemplar images, G(mean z)) for
    A, B, C. Top band: each concept's exemplars stacked over its average, then
    A - B + C = a 3x3 block (the result in the centre, framed red; 8 noisy neighbours).
    Bottom band: the same arithmetic on the exemplars' mean images (pixel space)."""
    f, fb, fo = font(13), font(15), font(30)
    some = concepts[0][2]
    tw = th = some.shape[-1] * scale
    cap = 18
    op_w = 40
    n_ex = max(len(c[2]) for c in concepts)
    top = 36
    avg_y = top + cap + n_ex * (th + cap) + 10  # the averages' row: the equation's line
    block = 3 * (tw + GAP)
    bx = GAP + 3 * (tw + op_w) + 4
    by = max(top + cap, avg_y + th // 2 - block // 2)  # the 3x3 block centred on the equation's line
    width = bx + block + GAP
    pixel_top = max(avg_y + th + cap, by + block) + 24
    height = pixel_top + cap + th + cap + 12
    canvas = Image.new("RGB", (width, height), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    draw.text((GAP, 8), title, fill=TEXT, font=fb)
    ops = ["-", "+", "="]
    for c, (name, indices, exemplars, average) in enumerate(concepts):
        x = GAP + c * (tw + op_w)
        draw.text((x, top), name, fill=TEXT, font=fb)
        for k, im in enumerate(to_tiles(exemplars, scale)):
            y = top + cap + k * (th + cap)
            canvas.paste(im, (x, y))
            draw.text((x, y + th + 1), f"#{indices[k]}", fill=MUTED, font=f)
        canvas.paste(to_tiles(average, scale)[0], (x, avg_y))
        _frame(draw, x, avg_y, tw, th, ENDPOINT)
        draw.text((x, avg_y + th + 2), f"G(mean z {name})", fill=ENDPOINT, font=f)
        draw.text((x + tw + op_w // 2 - 8, avg_y + th // 2 - 18), ops[c], fill=TEXT, font=fo)
    draw.text((bx, by - cap), f"result (centre) + U(-{noise:g}, {noise:g}) noise", fill=TEXT, font=f)
    for k, im in enumerate(to_tiles(result_grid, scale)):
        x, y = bx + (k % 3) * (tw + GAP), by + (k // 3) * (th + GAP)
        canvas.paste(im, (x, y))
    _frame(draw, bx + tw + GAP, by + th + GAP, tw, th, ALERT)
    draw.line([(GAP, pixel_top - 12), (width - GAP, pixel_top - 12)], fill=(200, 200, 200), width=1)
    draw.text((GAP, pixel_top - 8), "the same arithmetic in pixel space (mean images of the exemplars):",
              fill=TEXT, font=f)
    y = pixel_top + cap
    for c, im in enumerate(to_tiles(pixel_means, scale)):
        x = GAP + c * (tw + op_w)
        canvas.paste(im, (x, y))
        draw.text((x, y + th + 1), f"mean image {concepts[c][0]}", fill=MUTED, font=f)
        draw.text((x + tw + op_w // 2 - 8, y + th // 2 - 18), ops[c], fill=TEXT, font=fo)
    x = bx + tw + GAP
    canvas.paste(to_tiles(pixel_result.clamp(-1, 1), scale)[0], (x, y))
    _frame(draw, x, y, tw, th, ALERT)
    draw.text((x, y + th + 2), "pixel result", fill=ALERT, font=f)
    return canvas
