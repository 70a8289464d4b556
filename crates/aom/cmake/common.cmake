# libaom's build options, for every target (wasm32.cmake and native.cmake include this file).
# Beware: cargo does not see a change here. Rebuild libaom with `cargo clean -p libaom-sys`
# (and again with `--release`, and with `--target wasm32-unknown-unknown --release`).
set(AOM_TARGET_CPU generic CACHE STRING "")
set(CONFIG_MULTITHREAD 0 CACHE STRING "")
set(CONFIG_RUNTIME_CPU_DETECT 0 CACHE STRING "")
set(CONFIG_WEBM_IO 0 CACHE STRING "")
set(CONFIG_LIBYUV 0 CACHE STRING "")
set(CONFIG_TUNE_BUTTERAUGLI 0 CACHE STRING "")
set(CONFIG_TUNE_VMAF 0 CACHE STRING "")
set(CONFIG_AV1_DECODER 0 CACHE STRING "")
# Left out because edgelayer never uses them, to keep the image worker small: 10- and 12-bit
# coding (it encodes 8-bit pictures only), quantisation matrices (never turned on) and the
# denoiser behind film grain synthesis (never asked for).
set(CONFIG_AV1_HIGHBITDEPTH 0 CACHE STRING "")
set(CONFIG_QUANT_MATRIX 0 CACHE STRING "")
set(CONFIG_DENOISE 0 CACHE STRING "")
# The `cmake` crate builds debug profiles (cargo test) as CMake's Debug: optimise those too,
# or the image tests' encodes take minutes.
set(CMAKE_C_FLAGS_DEBUG "-O2 -DNDEBUG" CACHE STRING "" FORCE)
set(CMAKE_CXX_FLAGS_DEBUG "-O2 -DNDEBUG" CACHE STRING "" FORCE)
