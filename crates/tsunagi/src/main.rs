//! The `tsunagi` binary: see [`tsunagi::cli`].
#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    tsunagi::cli::main()
}
