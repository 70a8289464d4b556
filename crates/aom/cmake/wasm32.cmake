# libaom for wasm32-unknown-unknown (read by the `cmake` crate through
# CMAKE_TOOLCHAIN_FILE_wasm32_unknown_unknown, .cargo/config.toml): clang with wasi-libc's
# headers, libaom's portable C code (no SIMD assembly for wasm), no threads, no file output.
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR wasm32)
set(CMAKE_C_COMPILER clang)
set(CMAKE_CXX_COMPILER clang++)
set(CMAKE_C_COMPILER_TARGET wasm32-wasi)
set(CMAKE_CXX_COMPILER_TARGET wasm32-wasi)
# Nothing links for this target here: the objects go into the Rust module.
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
# wasm has no setjmp: include/setjmp.h makes libaom's error recovery a trap (see src/lib.rs).
set(CMAKE_C_STANDARD_INCLUDE_DIRECTORIES ${CMAKE_CURRENT_LIST_DIR}/include)
set(CMAKE_CXX_STANDARD_INCLUDE_DIRECTORIES ${CMAKE_CURRENT_LIST_DIR}/include)
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
