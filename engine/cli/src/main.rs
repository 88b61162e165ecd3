//! The `crosswalk` binary: see the library of this crate.

// Mapping allocates many small strings and maps, from many threads in the server;
// mimalloc serves that better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    crosswalk::main()
}
