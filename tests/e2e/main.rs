//! End-to-end tests: the real `granary` binary, real sockets, a real `curl`.
//!
//! Every scenario starts its own server process on `127.0.0.1:0` with a fresh data directory and
//! runs twice: on SQLite, and on PostgreSQL when `GRANARY_TEST_DATABASE_URL` names a server the
//! test may create databases on (each test creates and drops its own). Upstream repositories are
//! axum servers inside the test process that count the requests they receive, so the tests can
//! tell what Granary fetched, when, and whether a file was served from its own storage.

#[macro_use]
mod support;

mod acs;
mod against_pulp;
mod api;
mod cargo_registry;
mod container;
mod container_sync;
mod content;
mod content_guards;
mod content_labels;
mod crash;
mod credentials;
mod durability;
mod export_import;
mod handler;
mod harness;
mod hostile;
mod hostile_requests;
mod hostile_upstreams;
mod list_filters;
mod lookups;
mod maintenance;
mod npm_registry;
mod npm_upstream;
mod openapi;
mod permissions;
mod plugins;
mod public_index;
mod pulp_cli;
mod python;
mod python_plugin;
mod rbac;
mod registry_tokens;
mod replication;
mod repository_versions;
mod rest_resources;
mod root_routes;
mod scaleout;
mod secrets;
mod streamed_bodies;
mod sync;
mod tasks;
mod uploads;
mod upstream_origins;
mod users;
mod validation;
mod web_ui;
mod workers;
