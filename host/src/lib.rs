//! Granary: a self-hosted artifact repository in the spirit of Pulp 3, whose content types are
//! sandboxed WebAssembly components.
//!
//! # Layout
//! - [`config`]: the server's configuration (flags and environment variables).
//! - [`cli`]: `granary plugin ...`, client commands over the REST API.
//! - [`app`]: shared state, start-up, the server loop.
//! - [`api`]: the REST API under `/pulp/api/v3/`, one module per resource.
//! - [`content`]: the content app under `/pulp/content/`.
//! - [`tasks`]: the task queue, workers, resource locks, progress, cancellation.
//! - [`sync`]: the download pipeline behind a repository sync.
//! - [`domain`]: the core model: artifacts, content, repositories and versions, remotes,
//!   publications, distributions.
//! - [`plugins`]: the wasmtime engine, sandbox limits and the host side of the WIT contract.
//! - [`db`]: SQLite or PostgreSQL through sqlx, with embedded migrations.
//! - [`events`]: cross-process change notifications (PostgreSQL `LISTEN/NOTIFY`).
//! - [`storage`]: content-addressed artifact storage through `object_store`.
//! - [`error`]: the API error type and its JSON envelope.

pub mod api;
pub mod app;
pub mod cli;
pub mod config;
pub mod content;
pub mod db;
pub mod domain;
pub mod error;
pub mod events;
pub mod plugins;
pub mod storage;
pub mod sync;
pub mod tasks;
