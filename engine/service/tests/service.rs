//! The service's tests, in one test binary: the HTTP API through the router
//! ([`http`]), and connections over real sockets against a mock source system
//! ([`connections`]).

#[path = "../../../tests/support/mod.rs"]
mod support;

mod connections;
mod http;
