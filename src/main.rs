//! The `signet` binary: a thin shim over [`signet::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    match signet::cli::run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("signet: {error:#}");
            ExitCode::FAILURE
        }
    }
}
