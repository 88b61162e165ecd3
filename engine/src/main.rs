//! The `crosswalk` binary: see [`crosswalk::cli`].

fn main() -> std::process::ExitCode {
    crosswalk::cli::main()
}
