/* wasm32 has no setjmp. libaom calls setjmp() before encoding and longjmp() only on an
 * internal error (an allocation failing, a bad parameter): setjmp() here always returns 0, and
 * longjmp() (crates/aom/src/libc_shim.rs) traps, which ends the request in the image worker. */
#ifndef EDGELAYER_SETJMP_H
#define EDGELAYER_SETJMP_H
typedef int jmp_buf[1];
#define setjmp(env) 0
_Noreturn void longjmp(jmp_buf env, int val);
#endif
