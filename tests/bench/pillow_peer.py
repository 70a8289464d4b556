"""The image benchmark's peer (issue 15): a small Pillow image server with the edge's URL grammar.

    python pillow_peer.py PORT ORIGIN_URL

Answers `GET /cdn-cgi/image/<options>/<path>` by fetching `<path>` from the origin, then, as a
careful Pillow server would: EXIF orientation, `draft` (JPEG DCT scaling on load, keeping twice
the target size) and a Lanczos resize with `reducing_gap=2.0` (what `Image.thumbnail` does), and
the encoder the `Accept` header picks: AVIF q50 when listed, else lossy WebP q75, else JPEG q80 (PNG for images with alpha).
Options read: `width`/`w`, `height`/`h` (scale-down, aspect kept) and `format`/`f`
(`auto`, `avif`, `webp`, `jpeg`, `png`). Nothing is cached: every request is a miss. One request
at a time (`http.server`), on one core, like an isolate.
"""

import io
import sys
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

from PIL import Image, ImageOps

QUALITY = {"AVIF": 50, "WEBP": 75, "JPEG": 80}


def parse(options):
    out = {}
    for part in options.split(","):
        key, _, value = part.partition("=")
        key = {"w": "width", "h": "height", "f": "format"}.get(key, key)
        out[key] = value
    return out


def choose(fmt, accept, has_alpha):
    if fmt in ("avif", "webp", "png"):
        return fmt.upper()
    if fmt == "jpeg":
        return "PNG" if has_alpha else "JPEG"
    if "image/avif" in accept:
        return "AVIF"
    if "image/webp" in accept:
        return "WEBP"
    return "PNG" if has_alpha else "JPEG"


def transform(source, options, accept):
    """Bytes in, (bytes, media type) out."""
    im = Image.open(io.BytesIO(source))
    w, h = im.size
    if im.getexif().get(0x0112, 1) in (5, 6, 7, 8):
        w, h = h, w
    scale = 1.0
    if options.get("width"):
        scale = min(scale, int(options["width"]) / w)
    if options.get("height"):
        scale = min(scale, int(options["height"]) / h)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    if im.format == "JPEG" and scale < 1:
        # Image.thumbnail's draft: DCT scaling that keeps at least twice the target size.
        im.draft("RGB", (size[0] * 2, size[1] * 2) if im.getexif().get(0x0112, 1) not in (5, 6, 7, 8) else (size[1] * 2, size[0] * 2))
    im = ImageOps.exif_transpose(im)
    has_alpha = im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info)
    im = im.convert("RGBA" if has_alpha else "RGB")
    if im.size != size:
        im = im.resize(size, Image.LANCZOS, reducing_gap=2.0)
    fmt = choose(options.get("format", "auto"), accept, has_alpha)
    out = io.BytesIO()
    im.save(out, fmt, **({"quality": QUALITY[fmt]} if fmt in QUALITY else {}))
    return out.getvalue(), "image/" + fmt.lower()


class Handler(BaseHTTPRequestHandler):
    origin = ""

    def do_GET(self):
        prefix = "/cdn-cgi/image/"
        if not self.path.startswith(prefix):
            self.send_error(404)
            return
        options, _, path = self.path[len(prefix) :].partition("/")
        path = path.split("?")[0]
        try:
            with urllib.request.urlopen(f"{self.origin}/{path}") as r:
                source = r.read()
            start = time.perf_counter()
            body, media = transform(source, parse(options), self.headers.get("accept", ""))
            ms = (time.perf_counter() - start) * 1000
        except Exception as e:  # a peer that fails says why, like the edge's header
            self.send_error(422, str(e))
            return
        self.send_response(200)
        self.send_header("content-type", media)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-peer-ms", f"{ms:.1f}")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    Handler.origin = sys.argv[2].rstrip("/")
    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
