//! The C library functions libaom's encoder calls besides the allocator and `qsort` (which
//! `edgelayer-webp`'s shim provides), for `wasm32-unknown-unknown`, where nothing provides
//! them. `.ci/build-worker` fails if the module imports any other.
//!
//! Most only serve paths the worker never takes (files, error texts): they do nothing and
//! report that. The string and number functions are real, and tested natively.

use std::ffi::{c_char, c_int, c_long};

/// `strncmp`: compares at most `n` bytes of two C strings.
///
/// # Safety
/// Both pointers are NUL-terminated strings or readable for `n` bytes.
pub unsafe fn strncmp_impl(a: *const c_char, b: *const c_char, n: usize) -> c_int {
    for i in 0..n {
        let (x, y) = (*a.add(i) as u8, *b.add(i) as u8);
        if x != y {
            return c_int::from(x) - c_int::from(y);
        }
        if x == 0 {
            return 0;
        }
    }
    0
}

/// `strtol`/`strtoul`: optional spaces and sign, then digits in `base` (0: decimal, `0x`
/// hexadecimal or `0` octal); `end` gets where parsing stopped. Saturates instead of setting
/// `errno`.
///
/// # Safety
/// `s` is a NUL-terminated string; `end` is null or writable.
pub unsafe fn strtol_impl(s: *const c_char, end: *mut *mut c_char, base: c_int) -> (bool, u64) {
    let mut p = s;
    while matches!(*p as u8, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        p = p.add(1);
    }
    let negative = *p as u8 == b'-';
    if matches!(*p as u8, b'-' | b'+') {
        p = p.add(1);
    }
    let mut base = base as u32;
    let hex_prefix = *p as u8 == b'0' && matches!(*p.add(1) as u8, b'x' | b'X') && (*p.add(2) as u8).is_ascii_hexdigit();
    if (base == 0 || base == 16) && hex_prefix {
        p = p.add(2);
        base = 16;
    } else if base == 0 {
        base = if *p as u8 == b'0' { 8 } else { 10 };
    }
    let start = p;
    let mut value: u64 = 0;
    while let Some(d) = (*p as u8 as char).to_digit(base.clamp(2, 36)) {
        value = value.saturating_mul(u64::from(base)).saturating_add(u64::from(d));
        p = p.add(1);
    }
    if !end.is_null() {
        *end = if p == start { s.cast_mut() } else { p.cast_mut() };
    }
    (negative, value)
}

/// `lrint`: rounds to the nearest integer, ties to even (the default rounding mode).
pub fn lrint_impl(x: f64) -> c_long {
    let r = x.round_ties_even();
    if r.is_nan() {
        0
    } else {
        r.clamp(c_long::MIN as f64, c_long::MAX as f64) as c_long
    }
}

/// `rand`: a fixed linear congruential sequence (glibc's `TYPE_0` constants), the same on
/// every run, so encodings are reproducible.
pub fn rand_impl(state: &mut u32) -> c_int {
    *state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
    ((*state >> 1) & 0x7fff_ffff) as c_int
}

#[cfg(target_arch = "wasm32")]
mod exports {
    #![allow(clippy::missing_safety_doc)]
    use super::*;
    use std::ffi::{c_ulong, c_void};
    use std::cell::Cell;

    thread_local! {
        static SEED: Cell<u32> = const { Cell::new(1) };
    }

    #[no_mangle]
    pub unsafe extern "C" fn strcmp(a: *const c_char, b: *const c_char) -> c_int {
        strncmp_impl(a, b, usize::MAX)
    }
    #[no_mangle]
    pub unsafe extern "C" fn strncmp(a: *const c_char, b: *const c_char, n: usize) -> c_int {
        strncmp_impl(a, b, n)
    }
    #[no_mangle]
    pub unsafe extern "C" fn strtol(s: *const c_char, end: *mut *mut c_char, base: c_int) -> c_long {
        let (negative, v) = strtol_impl(s, end, base);
        let v = v.min(c_long::MAX as u64 + u64::from(negative)) as i64;
        (if negative { -v } else { v }).clamp(c_long::MIN.into(), c_long::MAX.into()) as c_long
    }
    #[no_mangle]
    pub unsafe extern "C" fn strtoul(s: *const c_char, end: *mut *mut c_char, base: c_int) -> c_ulong {
        let (negative, v) = strtol_impl(s, end, base);
        let v = v.min(c_ulong::MAX.into()) as c_ulong;
        if negative { v.wrapping_neg() } else { v }
    }
    #[no_mangle]
    pub extern "C" fn lrint(x: f64) -> c_long {
        lrint_impl(x)
    }
    #[no_mangle]
    pub extern "C" fn srand(seed: std::ffi::c_uint) {
        SEED.with(|s| s.set(seed));
    }
    #[no_mangle]
    pub extern "C" fn rand() -> c_int {
        SEED.with(|s| {
            let mut v = s.get();
            let r = rand_impl(&mut v);
            s.set(v);
            r
        })
    }
    /// See include/setjmp.h: an internal libaom error ends the request with a trap.
    #[no_mangle]
    pub extern "C" fn longjmp(_env: *mut c_int, _val: c_int) -> ! {
        core::arch::wasm32::unreachable()
    }
    // Error texts: empty. (C varargs arrive on wasm32 as one pointer, the last argument.)
    #[no_mangle]
    pub unsafe extern "C" fn vsnprintf(buf: *mut c_char, n: usize, _fmt: *const c_char, _va: *mut c_void) -> c_int {
        if !buf.is_null() && n > 0 {
            *buf = 0;
        }
        0
    }
    #[no_mangle]
    pub unsafe extern "C" fn snprintf(buf: *mut c_char, n: usize, fmt: *const c_char, va: *mut c_void) -> c_int {
        vsnprintf(buf, n, fmt, va)
    }
    #[no_mangle]
    pub extern "C" fn fprintf(_f: *mut c_void, _fmt: *const c_char, _va: *mut c_void) -> c_int {
        0
    }
    // Files: there are none.
    #[no_mangle]
    pub extern "C" fn fopen(_path: *const c_char, _mode: *const c_char) -> *mut c_void {
        std::ptr::null_mut()
    }
    #[no_mangle]
    pub extern "C" fn fclose(_f: *mut c_void) -> c_int {
        -1
    }
    #[no_mangle]
    pub extern "C" fn fscanf(_f: *mut c_void, _fmt: *const c_char, _va: *mut c_void) -> c_int {
        -1
    }
    #[no_mangle]
    pub extern "C" fn fread(_p: *mut c_void, _size: usize, _n: usize, _f: *mut c_void) -> usize {
        0
    }
    #[no_mangle]
    pub extern "C" fn fwrite(_p: *const c_void, _size: usize, _n: usize, _f: *mut c_void) -> usize {
        0
    }
    #[no_mangle]
    pub extern "C" fn fseek(_f: *mut c_void, _off: c_long, _whence: c_int) -> c_int {
        -1
    }
    #[no_mangle]
    pub extern "C" fn fputc(_c: c_int, _f: *mut c_void) -> c_int {
        -1
    }
    #[no_mangle]
    pub extern "C" fn feof(_f: *mut c_void) -> c_int {
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    #[test]
    fn strncmp_orders_bytes_and_stops_at_nul_or_n() {
        let (a, b) = (CString::new("cpu-used").unwrap(), CString::new("cpu-usex").unwrap());
        unsafe {
            assert!(strncmp_impl(a.as_ptr(), b.as_ptr(), usize::MAX) < 0);
            assert_eq!(strncmp_impl(a.as_ptr(), b.as_ptr(), 7), 0);
            assert_eq!(strncmp_impl(a.as_ptr(), a.as_ptr(), usize::MAX), 0);
            let short = CString::new("cpu").unwrap();
            assert!(strncmp_impl(a.as_ptr(), short.as_ptr(), usize::MAX) > 0);
        }
    }

    #[test]
    fn strtol_reads_sign_base_and_where_it_stopped() {
        let parse = |s: &str, base| unsafe {
            let c = CString::new(s).unwrap();
            let mut end = std::ptr::null_mut();
            let (neg, v) = strtol_impl(c.as_ptr(), &mut end, base);
            (neg, v, end.offset_from(c.as_ptr()))
        };
        assert_eq!(parse("  42x", 10), (false, 42, 4));
        assert_eq!(parse("-17", 0), (true, 17, 3));
        assert_eq!(parse("0x1F", 0), (false, 31, 4));
        assert_eq!(parse("017", 0), (false, 15, 3));
        assert_eq!(parse("x", 10), (false, 0, 0), "no digits: end is the start");
        assert_eq!(parse("99999999999999999999999", 10).1, u64::MAX, "saturates");
    }

    #[test]
    fn lrint_rounds_ties_to_even_and_saturates() {
        assert_eq!((lrint_impl(2.5), lrint_impl(3.5), lrint_impl(-2.5), lrint_impl(2.4)), (2, 4, -2, 2));
        assert_eq!(lrint_impl(1e30), c_long::MAX);
        assert_eq!(lrint_impl(f64::NAN), 0);
    }

    #[test]
    fn rand_is_a_fixed_non_negative_sequence() {
        let (mut a, mut b) = (1, 1);
        let xs: Vec<_> = (0..5).map(|_| rand_impl(&mut a)).collect();
        assert_eq!(xs, (0..5).map(|_| rand_impl(&mut b)).collect::<Vec<_>>());
        assert!(xs.iter().all(|&x| x >= 0) && xs.windows(2).all(|w| w[0] != w[1]));
    }
}
