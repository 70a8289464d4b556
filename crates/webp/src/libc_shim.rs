//! The C library functions libwebp's encoder calls, for `wasm32-unknown-unknown`, which has
//! none: `malloc`, `calloc`, `realloc` and `free` on Rust's global allocator, and `qsort`.
//! (`memcpy` and the like come from Rust's compiler builtins.) The list is what the linked
//! module imports from `env` without them; `.ci/build-worker` fails if any import is left.
//!
//! The functions are plain Rust here, tested natively; only on wasm32 are they exported under
//! the C names (natively they would replace the system's `malloc`).

use std::alloc::{alloc, alloc_zeroed, dealloc, Layout};
use std::ffi::{c_int, c_void};

/// `malloc`'s alignment on wasm32 (`max_align_t`), and the size of the header before each
/// block that remembers the block's size for `free`.
const ALIGN: usize = 16;

fn layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(size.checked_add(ALIGN)?, ALIGN).ok()
}

/// Allocates `size` bytes after a header holding `size`; null when the allocator fails.
unsafe fn allocate(size: usize, zeroed: bool) -> *mut c_void {
    let Some(layout) = layout(size) else { return std::ptr::null_mut() };
    let base = if zeroed { alloc_zeroed(layout) } else { alloc(layout) };
    if base.is_null() {
        return std::ptr::null_mut();
    }
    base.cast::<usize>().write(size);
    base.add(ALIGN).cast()
}

/// `calloc`: `count × size` zeroed bytes, null on overflow.
unsafe fn allocate_array(count: usize, size: usize) -> *mut c_void {
    match count.checked_mul(size) {
        Some(total) => allocate(total, true),
        None => std::ptr::null_mut(),
    }
}

/// `free`: gives back a block from [`allocate`].
unsafe fn release(ptr: *mut c_void) {
    if ptr.is_null() {
        return;
    }
    let base = ptr.cast::<u8>().sub(ALIGN);
    let size = base.cast::<usize>().read();
    if let Some(layout) = layout(size) {
        dealloc(base, layout);
    }
}

/// `realloc`: a new block with the old one's bytes, the old one given back.
unsafe fn reallocate(ptr: *mut c_void, size: usize) -> *mut c_void {
    if ptr.is_null() {
        return allocate(size, false);
    }
    let old = ptr.cast::<u8>().sub(ALIGN).cast::<usize>().read();
    let new = allocate(size, false);
    if !new.is_null() {
        std::ptr::copy_nonoverlapping(ptr.cast::<u8>(), new.cast::<u8>(), old.min(size));
        release(ptr);
    }
    new
}

/// A C comparison function, as `qsort` takes it.
type Compare = Option<unsafe extern "C" fn(*const c_void, *const c_void) -> c_int>;

/// `qsort`: an in-place heapsort of `count` elements of `size` bytes (libwebp sorts Huffman
/// trees and palettes, a few hundred elements at most).
unsafe fn sort(base: *mut c_void, count: usize, size: usize, compare: Compare) {
    let Some(compare) = compare else { return };
    if size == 0 || count < 2 {
        return;
    }
    let base = base.cast::<u8>();
    let at = |i: usize| base.add(i * size);
    let less = |a: usize, b: usize| compare(at(a).cast(), at(b).cast()) < 0;
    let swap = |a: usize, b: usize| std::ptr::swap_nonoverlapping(at(a), at(b), size);
    let sift = |mut root: usize, end: usize| loop {
        let mut child = 2 * root + 1;
        if child >= end {
            break;
        }
        if child + 1 < end && less(child, child + 1) {
            child += 1;
        }
        if !less(root, child) {
            break;
        }
        swap(root, child);
        root = child;
    };
    for start in (0..count / 2).rev() {
        sift(start, count);
    }
    for end in (1..count).rev() {
        swap(0, end);
        sift(0, end);
    }
}

/// The C names, on wasm32 only.
#[cfg(target_arch = "wasm32")]
mod exports {
    use super::{allocate, allocate_array, reallocate, release, sort, Compare};
    use std::ffi::c_void;

    /// C `malloc`.
    #[no_mangle]
    pub unsafe extern "C" fn malloc(size: usize) -> *mut c_void {
        allocate(size, false)
    }

    /// C `calloc`.
    #[no_mangle]
    pub unsafe extern "C" fn calloc(count: usize, size: usize) -> *mut c_void {
        allocate_array(count, size)
    }

    /// C `realloc`.
    #[no_mangle]
    pub unsafe extern "C" fn realloc(ptr: *mut c_void, size: usize) -> *mut c_void {
        reallocate(ptr, size)
    }

    /// C `free`.
    #[no_mangle]
    pub unsafe extern "C" fn free(ptr: *mut c_void) {
        release(ptr)
    }

    /// C `qsort`.
    #[no_mangle]
    pub unsafe extern "C" fn qsort(base: *mut c_void, count: usize, size: usize, compare: Compare) {
        sort(base, count, size, compare)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    unsafe extern "C" fn by_first_u16(a: *const c_void, b: *const c_void) -> c_int {
        let (a, b) = (a.cast::<[u16; 3]>().read_unaligned(), b.cast::<[u16; 3]>().read_unaligned());
        c_int::from(a[0] > b[0]) - c_int::from(a[0] < b[0])
    }

    #[test]
    fn sort_orders_elements_of_any_size() {
        for n in [0usize, 1, 2, 3, 7, 64, 257] {
            let mut items: Vec<[u16; 3]> = (0..n as u16).map(|i| [i.wrapping_mul(7919) % 97, i, !i]).collect();
            let mut expected = items.clone();
            expected.sort_by_key(|e| e[0]);
            unsafe { sort(items.as_mut_ptr().cast(), n, 6, Some(by_first_u16)) };
            assert_eq!(items.iter().map(|e| e[0]).collect::<Vec<_>>(), expected.iter().map(|e| e[0]).collect::<Vec<_>>(), "n={n}");
            for e in &items {
                assert_eq!(e[2], !e[1], "elements move whole");
            }
        }
    }

    #[test]
    fn blocks_are_aligned_zeroed_resized_and_freed() {
        unsafe {
            let p = allocate_array(10, 4).cast::<u8>();
            assert!(!p.is_null() && (p as usize).is_multiple_of(ALIGN));
            assert!((0..40).all(|i| *p.add(i) == 0), "calloc zeroes");
            for i in 0..40 {
                *p.add(i) = i as u8;
            }
            let q = reallocate(p.cast(), 100).cast::<u8>();
            assert!((0..40).all(|i| *q.add(i) == i as u8), "realloc keeps the bytes");
            let r = reallocate(q.cast(), 8).cast::<u8>();
            assert!((0..8).all(|i| *r.add(i) == i as u8), "and shrinks");
            release(r.cast());
            release(std::ptr::null_mut());
            assert!(allocate_array(usize::MAX, 2).is_null(), "overflow is a null, not a crash");
            assert!(allocate(usize::MAX - 4, false).is_null());
        }
    }
}
