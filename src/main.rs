//! The `signet` binary: a thin shim over [`signet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    return_large_blocks_to_the_system();
    match signet::cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("signet: {error:#}");
            ExitCode::FAILURE
        }
    }
}

/// Blocks of 256 KiB and more get mappings of their own, unmapped when
/// freed. glibc's default threshold rises to the largest block freed so
/// far — a whole render's 11 MB canvas — after which such blocks are
/// carved from the arena of whichever thread asked, and freed ones stay
/// resident there: the process then grows well past its caches' bounds
/// (peak 150 MB against 107 MB in a 20 s miss storm with a 32 MiB cache,
/// at the same render rate; `benches/load.sh` measures it).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn return_large_blocks_to_the_system() {
    // SAFETY: mallopt only sets an allocator parameter; it is called
    // before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn return_large_blocks_to_the_system() {}
