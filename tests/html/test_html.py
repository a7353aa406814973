#!/usr/bin/env python3
"""tests/html/test_html.py LORAKIT LORAKIT_GEN — the HTML reports, opened in headless Chromium.

`lorakit inspect FILE --html` and `lorakit batch --html` on generated SDXL- and Flux-shaped LoRAs: each
page is self-contained (no URL, script or font from anywhere), renders in Debian's chromium without a
console message or a request for any other file, holds every plot in its DOM, and its screenshots, in
light and in dark mode, show the plots in the mode's colours (the PNG's pixels are decoded and counted,
not just found to exist). The overview's links lead to the per-file pages, names with ' ' and '#'
included. Exit status 77 (ctest: skipped) without chromium.
"""
import os
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import urllib.parse
import zlib

SKIPPED = 77
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage",
                  "--hide-scrollbars", "--window-size=1024,900"]
DARK_FLAGS = ["--force-dark-mode", "--blink-settings=preferredColorScheme=0"]
# The CSS colours of src/analysis/html.cpp: page background and the mean curve, per mode.
COLOURS = {"light": {"background": (0xFF, 0xFF, 0xFF), "mean": (0x1F, 0x6F, 0xD1), "preset": (0x1A, 0x7F, 0x37)},
           "dark": {"background": (0x0F, 0x12, 0x16), "mean": (0x5A, 0xA2, 0xFF), "preset": (0x4F, 0xC4, 0x6B)}}
EXTERNAL = re.compile(r"https?:|<script|<link|<img|<iframe|@import|url\(|src=", re.IGNORECASE)


def fail(message):
    print(f"html test: FAIL: {message}", file=sys.stderr)
    sys.exit(1)


def step(message):
    print(f"html test: {message}", flush=True)


def run(*command):
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        fail(f"{' '.join(command)}: exit {result.returncode}: {result.stderr.strip()}")
    return result.stdout


class Chromium:
    def __init__(self, binary, work):
        self.binary = binary
        self.profile = os.path.join(work, "chromium-profile")

    def _run(self, page, *flags):
        command = [self.binary, *CHROMIUM_FLAGS, f"--user-data-dir={self.profile}", "--enable-logging=stderr",
                   "--v=1", *flags, "file://" + urllib.parse.quote(os.path.abspath(page))]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            fail(f"chromium exit {result.returncode} on {page}: {result.stderr[-2000:]}")
        return result

    def dom(self, page):
        """The rendered DOM; fails on a console message or a request for any file but the page."""
        result = self._run(page, "--dump-dom")
        console = [line for line in result.stderr.splitlines() if ":CONSOLE" in line]
        if console:
            fail(f"{page}: console messages: {console}")
        loads = re.findall(r"FileURLLoader::Start: (\S+)", result.stderr)
        others = [url for url in loads if urllib.parse.unquote(url) != "file://" + os.path.abspath(page)]
        if others:
            fail(f"{page}: requests other files: {others}")
        if "<body" not in result.stdout:
            fail(f"{page}: no DOM dumped")
        return result.stdout

    def screenshot(self, page, png, dark):
        self._run(page, f"--screenshot={png}", *(DARK_FLAGS if dark else []))
        return decode_png(png)


def decode_png(path):
    """(width, height, rows of RGB tuples) of an 8-bit RGB or RGBA PNG."""
    data = open(path, "rb").read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        fail(f"{path} is not a PNG")
    position, compressed = 8, b""
    while position < len(data):
        length, kind = struct.unpack(">I4s", data[position:position + 8])
        body = data[position + 8:position + 8 + length]
        position += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour_type = struct.unpack(">IIBB", body[:10])
        elif kind == b"IDAT":
            compressed += body
    if depth != 8 or colour_type not in (2, 6):
        fail(f"{path}: unexpected PNG format (depth {depth}, colour type {colour_type})")
    channels = 3 if colour_type == 2 else 4
    raw, stride = zlib.decompress(compressed), width * channels
    previous, rows, offset = bytearray(stride), [], 0
    for _ in range(height):
        kind, line = raw[offset], bytearray(raw[offset + 1:offset + 1 + stride])
        offset += 1 + stride
        for i in range(stride):
            left = line[i - channels] if i >= channels else 0
            up, up_left = previous[i], (previous[i - channels] if i >= channels else 0)
            if kind == 1:
                line[i] = (line[i] + left) & 255
            elif kind == 2:
                line[i] = (line[i] + up) & 255
            elif kind == 3:
                line[i] = (line[i] + (left + up) // 2) & 255
            elif kind == 4:
                p = left + up - up_left
                pa, pb, pc = abs(p - left), abs(p - up), abs(p - up_left)
                line[i] = (line[i] + (left if pa <= pb and pa <= pc else up if pb <= pc else up_left)) & 255
        rows.append([tuple(line[x:x + 3]) for x in range(0, stride, channels)])
        previous = line
    return width, height, rows


def near(pixel, colour, tolerance=24):
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour))


def check_screenshot(name, image, mode, minimum_marks):
    """The page's background is the mode's, and the mean curve and preset marks are drawn in its colours."""
    _, _, rows = image
    pixels = [p for row in rows for p in row]
    colours = COLOURS[mode]
    background = sum(near(p, colours["background"], 6) for p in pixels) / len(pixels)
    drawn = len(pixels) - sum(near(p, colours["background"], 6) for p in pixels)
    curve = sum(near(p, colours["mean"]) for p in pixels)
    preset = sum(near(p, colours["preset"]) for p in pixels)
    step(f"{name} ({mode}): background {background:.0%}, {drawn} pixels drawn, {curve} of the mean curve's "
         f"colour, {preset} of the presets'")
    if background < 0.3:
        fail(f"{name} ({mode}): the background is not the {mode} mode's")
    if drawn < 2000:
        fail(f"{name} ({mode}): the screenshot is nearly blank")
    if curve < minimum_marks or preset < minimum_marks // 4:
        fail(f"{name} ({mode}): the curves or marks are not drawn in the {mode} mode's colours")


def check_static(page):
    text = open(page, encoding="utf-8").read()
    found = EXTERNAL.search(text)
    if found:
        fail(f"{page} is not self-contained: {text[max(0, found.start() - 60):found.end() + 60]!r}")
    return text


def polyline_points(dom, svg_id):
    svg = re.search(rf'<svg id="{svg_id}".*?</svg>', dom, re.DOTALL)
    if not svg:
        fail(f"the DOM has no <svg id=\"{svg_id}\">")
    curve = re.search(r'<polyline class="curve[^"]*"[^>]*points="([^"]*)"', svg.group(0))
    return len(curve.group(1).split()) if curve else 0


def check_file_page(chromium, page, work, name):
    check_static(page)
    dom = chromium.dom(page)
    for svg_id in ("plot-mean", "plot-energy"):
        points = polyline_points(dom, svg_id)
        if points < 10:
            fail(f"{page}: the curve of {svg_id} has {points} points")
    heat = re.findall(r'<svg id="heat-\d+"', dom)
    cells = len(re.findall(r'<rect class="cell"', dom))
    for element in ('id="points"', 'id="modules"'):
        if element not in dom:
            fail(f"{page}: no element with {element}")
    if not heat or cells < 10:
        fail(f"{page}: {len(heat)} heat maps with {cells} cells")
    step(f"{name}: renders without console messages or requests; 2 curves, {len(heat)} heat maps, {cells} cells")
    for mode in ("light", "dark"):
        image = chromium.screenshot(page, os.path.join(work, f"{name}-{mode}.png"), mode == "dark")
        check_screenshot(name, image, mode, minimum_marks=200)


def main():
    lorakit, generator = sys.argv[1], sys.argv[2]
    binary = shutil.which("chromium")
    if binary is None:
        print("html test: chromium is not installed (scripts/setup.sh installs it); skipped")
        return SKIPPED
    work = tempfile.mkdtemp(prefix="lorakit-html-")
    try:
        chromium = Chromium(binary, work)
        inputs = os.path.join(work, "in")
        os.mkdir(inputs)
        files = {"sdxl.safetensors": ["--arch", "sdxl", "--rank", "16", "--shrink", "8"],
                 "flux #1.safetensors": ["--arch", "flux", "--rank", "16", "--shrink", "8"]}
        for file, arguments in files.items():
            run(generator, *arguments, "--dead-fraction", "0.2", "--seed", "7", "-o", os.path.join(inputs, file))

        page = os.path.join(work, "sdxl.html")
        run(lorakit, "inspect", os.path.join(inputs, "sdxl.safetensors"), "--html", page)
        check_file_page(chromium, page, work, "inspect sdxl")

        overview = os.path.join(work, "overview.html")
        run(lorakit, "batch", inputs, "-o", os.path.join(work, "out"), "--preset", "high", "--html", overview)
        text = check_static(overview)
        links = re.findall(r'<a href="([^"]+)">([^<]+)</a>', text)
        if sorted(name for _, name in links) != sorted(files):
            fail(f"the overview links {links}, not one page per file")
        for href, name in links:
            target = os.path.join(work, urllib.parse.unquote(href))
            if not os.path.isfile(target):
                fail(f"the overview's link {href} leads nowhere")
            check_file_page(chromium, target, work, f"batch page of {name}")
        dom = chromium.dom(overview)
        sparks = re.findall(r'<svg id="(spark-\d+)"', dom)
        if len(sparks) != len(files) or any(polyline_points(dom, spark) < 10 for spark in sparks):
            fail(f"the overview has {len(sparks)} sparklines (or one without its curve), not {len(files)}")
        step(f"overview: renders without console messages or requests; {len(sparks)} sparklines, "
              f"{len(links)} links that lead to their pages")
        for mode in ("light", "dark"):
            image = chromium.screenshot(overview, os.path.join(work, f"overview-{mode}.png"), mode == "dark")
            check_screenshot("overview", image, mode, minimum_marks=40)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
