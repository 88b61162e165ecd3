//! End-to-end tests through the real `crosswalk` binary, in one test binary: the
//! command line's golden cases ([`cli`]), the server on a real socket ([`server`]),
//! several replicas on one PostgreSQL database ([`replicas`]), the console in
//! headless Chromium ([`console`]), and new plugin projects in each language built
//! with their own toolchains ([`plugin_projects`]).

#[path = "support/mod.rs"]
mod support;

#[path = "cli.rs"]
mod cli;
#[path = "console.rs"]
mod console;
#[path = "plugin_projects.rs"]
mod plugin_projects;
#[path = "replicas.rs"]
mod replicas;
#[path = "server.rs"]
mod server;
