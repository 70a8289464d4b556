"""minify-html (PyPI, native Rust core) on a corpus, for the minify bench's side-by-side columns.

Usage: python minify_html_peer.py CORPUS_DIR OUT_DIR [ROUNDS]

Writes each page's minify-html output to OUT_DIR (same file name) and prints the throughput
over the whole corpus, median of ROUNDS runs: `minify-html <MB/s> MB/s`. HTML only, as the
issue measured it: `minify_css` and `minify_js` off, every other option at its default (the
spec-compliant settings).
"""
import os
import statistics
import sys
import time

import minify_html


def main():
    corpus, out = sys.argv[1], sys.argv[2]
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 15
    os.makedirs(out, exist_ok=True)
    pages = []
    for name in sorted(os.listdir(corpus)):
        if name.endswith(".html"):
            with open(os.path.join(corpus, name), "rb") as f:
                pages.append((name, f.read().decode("utf-8", errors="surrogateescape")))
    for name, text in pages:
        minified = minify_html.minify(text, minify_css=False, minify_js=False)
        with open(os.path.join(out, name), "wb") as f:
            f.write(minified.encode("utf-8", errors="surrogateescape"))
    total = sum(len(t.encode("utf-8", errors="surrogateescape")) for _, t in pages)
    speeds = []
    for _ in range(rounds):
        start = time.perf_counter()
        for _, text in pages:
            minify_html.minify(text, minify_css=False, minify_js=False)
        speeds.append(total / 1e6 / (time.perf_counter() - start))
    print(f"minify-html {statistics.median(speeds):.1f} MB/s")


if __name__ == "__main__":
    main()
