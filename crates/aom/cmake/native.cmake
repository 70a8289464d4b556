# libaom for the host (unit tests, the native bench): the same portable C code as in the worker,
# so no assembler is needed and the bench measures what wasm runs.
include(${CMAKE_CURRENT_LIST_DIR}/common.cmake)
