//! An allocation that fails ends the program with one line on stderr and exit status 2,
//! instead of Rust's abort (`memory allocation of N bytes failed`, status 134). The
//! budget check ([`crate::budget`]) refuses sizes that cannot fit before any work; this
//! catches what its estimates miss (a `--max-memory` above a process limit, another
//! process taking the memory meanwhile).
//!
//! ```no_run
//! #[global_allocator]
//! static ALLOCATOR: tapegrad_demo::oom::ExitOnFailure = tapegrad_demo::oom::ExitOnFailure;
//! ```

use std::alloc::{GlobalAlloc, Layout, System};

/// The system allocator, ending the process with one line and status 2 when it fails.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExitOnFailure;

/// `p`, or the end of the process when it is null (an allocation of `size` bytes failed).
fn checked(p: *mut u8, size: usize) -> *mut u8 {
    if p.is_null() {
        out_of_memory(size)
    }
    p
}

// SAFETY: every method forwards to `System` with the caller's arguments; a null result
// never returns (the process ends), a non-null one is `System`'s.
unsafe impl GlobalAlloc for ExitOnFailure {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        checked(unsafe { System.alloc(layout) }, layout.size())
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        checked(unsafe { System.alloc_zeroed(layout) }, layout.size())
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        checked(unsafe { System.realloc(ptr, layout, new_size) }, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// A message in a fixed buffer: formatting it allocates nothing.
struct Line {
    bytes: [u8; 256],
    len: usize,
}

impl std::fmt::Write for Line {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        let n = s.len().min(self.bytes.len() - self.len);
        self.bytes[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
        self.len += n;
        Ok(())
    }
}

/// Writes the line (without allocating: the heap is what failed) and ends the process
/// with status 2, without running destructors or exit handlers that could allocate.
#[cold]
fn out_of_memory(size: usize) -> ! {
    let mut line = Line { bytes: [0; 256], len: 0 };
    let _ = std::fmt::Write::write_fmt(
        &mut line,
        format_args!(
            "{}: out of memory: an allocation of {size} bytes failed (a process or container memory limit, or \
             --max-memory above it; smaller sizes fit)\n",
            crate::output::PROGRAM
        ),
    );
    #[cfg(unix)]
    // SAFETY: writes bytes of a live buffer to stderr, then ends the process
    unsafe {
        let _ = libc::write(2, line.bytes.as_ptr().cast(), line.len);
        libc::_exit(2)
    }
    #[cfg(not(unix))]
    {
        use std::io::Write;
        let _ = std::io::stderr().write_all(&line.bytes[..line.len]);
        std::process::exit(2)
    }
}
