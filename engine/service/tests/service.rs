//! The service's tests, in one test binary: the HTTP API through the router
//! ([`http`]), and connections over real sockets against a mock source system
//! ([`connections`]), and the store conformance suite, run on sled and on a throwaway
//! PostgreSQL ([`store`]).

#[path = "../../../tests/support/mod.rs"]
mod support;

mod connections;
mod http;
mod store;

/// Runs a store call from a test's synchronous set-up: on a runtime of its own, in a
/// thread of its own (the test's runtime may be running on this thread already).
fn block_on<F>(call: F) -> F::Output
where
    F: std::future::Future + Send,
    F::Output: Send,
{
    std::thread::scope(|s| {
        s.spawn(|| {
            tokio::runtime::Runtime::new()
                .expect("a runtime")
                .block_on(call)
        })
        .join()
        .expect("the store call does not panic")
    })
}
