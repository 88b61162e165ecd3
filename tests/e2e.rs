//! End-to-end tests through the real `crosswalk` binary, in one test binary: the
//! command line's golden cases ([`cli`]), the server on a real socket ([`server`]),
//! several replicas on one PostgreSQL database ([`replicas`]), and the console in
//! headless Chromium ([`console`]).

#[path = "support/mod.rs"]
mod support;

#[path = "cli.rs"]
mod cli;
#[path = "console.rs"]
mod console;
#[path = "replicas.rs"]
mod replicas;
#[path = "server.rs"]
mod server;
