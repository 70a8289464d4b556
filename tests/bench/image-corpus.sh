#!/usr/bin/env bash
# Builds the image benchmark corpus in target/corpus/images (nothing committed):
# - photos from Debian's plasma-workspace-wallpapers (LGPLv3, KDE wallpaper photographs):
#   Path, Autumn, EveningGlow (2560x1600) and PastelHills (3200x2000) JPEGs, and Flow
#   (5120x2880, 14.7 MP) for the memory measurement;
# - an animated GIF made from assets/site/img/coffee.jpg (below);
# - scikit-image 0.26.0's sample data (PyPI wheel; public domain / CC0): astronaut.png (an RGB
#   photo kept as PNG) and logo.png (an RGBA graphic).
# Also installs Debian's libavif-bin (avifdec) when root, so the benchmark can score AVIF output.
set -euo pipefail
cd "$(dirname "$0")/../.."
# Pillow makes the derived files: the bench's venv (.ci/bench) when given, else the system's.
py=${EDGELAYER_PILLOW_PY:-python3}
out=target/corpus/images
mkdir -p "$out"
# An animated GIF, 60 frames of 800x533 (25.6 MP in all, under the 50 MP guard), turned from
# assets/site/img/coffee.jpg: the frame-by-frame resize timing (needs Pillow).
[ -f "$out/animated-60.gif" ] || "$py" -c "
from PIL import Image
src = Image.open('assets/site/img/coffee.jpg').resize((800, 533))
frames = [src.rotate(a * 6).convert('P') for a in range(60)]
frames[0].save('$out/animated-60.gif', save_all=True, append_images=frames[1:], duration=50, loop=0)
" || echo "image corpus: no Pillow, skipping animated-60.gif"
# A 12 MP (4000x3000) baseline JPEG cut from Flow, q90: the issue's 12 MP case.
twelve() {
  [ -f "$out/twelve-mp.jpg" ] || "$py" -c "
from PIL import Image
im = Image.open('$out/flow-14mp.jpg').crop((0, 0, 4000, 2880)).resize((4000, 3000))
im.save('$out/twelve-mp.jpg', quality=90)
" || echo "image corpus: no Pillow, skipping twelve-mp.jpg"
}
[ -f "$out/.done" ] && { twelve; echo "image corpus: $(ls "$out" | wc -l) files in $out"; exit 0; }
work=target/corpus/image-src
mkdir -p "$work" "$out"
if ! command -v avifdec >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get install -y -q libavif-bin >/dev/null
fi
( cd "$work"
  ls plasma-workspace-wallpapers_*.deb >/dev/null 2>&1 || apt-get download plasma-workspace-wallpapers
  ls scikit_image-0.26.0-*.whl >/dev/null 2>&1 || python3 -m pip download -q --no-deps --only-binary=:all: scikit-image==0.26.0 -d .
  dpkg-deb -x plasma-workspace-wallpapers_*.deb plasma
  python3 -m zipfile -e scikit_image-0.26.0-*.whl skimage-wheel >/dev/null )
w=$work/plasma/usr/share/wallpapers
cp "$w/Path/contents/images/2560x1600.jpg" "$out/path.jpg"
cp "$w/Autumn/contents/images/2560x1600.jpg" "$out/autumn.jpg"
cp "$w/EveningGlow/contents/images/2560x1600.jpg" "$out/eveningglow.jpg"
cp "$w/PastelHills/contents/images/3200x2000.jpg" "$out/pastelhills.jpg"
cp "$w/Flow/contents/images/5120x2880.jpg" "$out/flow-14mp.jpg"
cp "$work/skimage-wheel/skimage/data/astronaut.png" "$out/astronaut.png"
cp "$work/skimage-wheel/skimage/data/logo.png" "$out/logo.png"
# A progressive 12 MP (4000x3000) JPEG cut from Flow, for the memory figure (needs Pillow).
twelve
"$py" -c "
from PIL import Image
im = Image.open('$out/flow-14mp.jpg').crop((0, 0, 4000, 2880)).resize((4000, 3000))
im.save('$out/progressive-12mp.jpg', quality=90, progressive=True)
" || echo "image corpus: no Pillow, skipping progressive-12mp.jpg"
touch "$out/.done"
echo "image corpus: $(ls "$out" | wc -l) files in $out ($(du -sh "$out" | cut -f1))"
