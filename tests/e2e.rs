//! End-to-end tests through the real `crosswalk` binary, in one test binary: the
//! command line's golden cases ([`cli`]), the server on a real socket ([`server`]),
//! and several replicas on one PostgreSQL database ([`replicas`]).

#[path = "support/mod.rs"]
mod support;

#[path = "cli.rs"]
mod cli;
#[path = "replicas.rs"]
mod replicas;
#[path = "server.rs"]
mod server;
