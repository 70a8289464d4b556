#!/usr/bin/env bash
# Builds the HTML benchmark corpus in target/corpus/html: 24 real pages from Debian's
# documentation packages (fetched from the Debian archive with `apt-get download`, nothing
# committed): 8 each from sqlite3-doc (the sqlite.org website), git-doc (asciidoc output) and
# postgresql-doc-15 (DocBook output). Pages over 8 KB, picked at even steps through the sorted
# file list, so the same package versions give the same corpus.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/corpus/html
[ -f "$out/.done" ] && { echo "corpus: $(ls "$out" | wc -l) pages in $out"; exit 0; }
work=target/corpus/debs
mkdir -p "$work" "$out"
( cd "$work" && for p in sqlite3-doc git-doc postgresql-doc-15; do ls ${p}_*.deb >/dev/null 2>&1 || apt-get download "$p"; done )
for deb in "$work"/*.deb; do
  pkg=$(basename "$deb" | cut -d_ -f1)
  dir="$work/$pkg"; mkdir -p "$dir"; dpkg-deb -x "$deb" "$dir"
  mapfile -t pages < <(find "$dir" -name '*.html' -size +8k | LC_ALL=C sort)
  n=${#pages[@]}; [ "$n" -ge 8 ] || { echo "corpus: only $n pages in $pkg" >&2; exit 1; }
  for i in $(seq 0 7); do
    src=${pages[$(( i * n / 8 ))]}
    cp "$src" "$out/${pkg}__$(basename "$src")"
  done
done
touch "$out/.done"
echo "corpus: $(ls "$out" | wc -l) pages in $out ($(du -sh "$out" | cut -f1))"
