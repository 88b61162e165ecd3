//! End-to-end tests through the real `crosswalk` binary, in one test binary: the
//! command line's golden cases ([`cli`]) and the server on a real socket ([`server`]).

#[path = "support/mod.rs"]
mod support;

#[path = "cli.rs"]
mod cli;
#[path = "server.rs"]
mod server;
