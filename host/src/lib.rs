//! Granary: a self-hosted artifact repository in the spirit of Pulp 3, whose content types are
//! sandboxed WebAssembly components.
//!
//! # Layout
//! Layers, bottom to top; a module imports only from layers below it (`host/tests/layers.rs`
//! fails on an import cycle between these modules). Each layer is handed the capability it uses
//! (a `&Db`, a blob store, [`domain::Backends`]), never the handlers' shared state.
//! 1. Foundations: [`config`] (flags and environment variables), [`error`] (the API error type and
//!    its JSON envelope), [`db`] (SQLite or PostgreSQL through sqlx, embedded migrations,
//!    cross-process announcements), [`storage`] (content-addressed artifact storage through
//!    `object_store`), [`progress`] (what running work reports to its task).
//! 2. [`plugins`]: the wasmtime engine, sandbox limits and the host side of the WIT contract;
//!    capability traits (e.g. [`plugins::CreateArtifact`]) reach the domain from below.
//! 3. [`domain`]: the core model: artifacts, content, repositories and versions, remotes,
//!    publications, distributions, installed plugins; [`sync`], the download pipeline behind a
//!    repository sync, sits on top of it.
//! 4. [`tasks`]: the task queue, workers, resource locks, cancellation, what each kind of task does.
//! 5. [`auth`] (who is asking) and [`state`] (what every handler shares), used by the HTTP
//!    surfaces: [`content`] (the content app under `/pulp/content/`) and, above it, [`api`] (the
//!    REST API under `/pulp/api/v3/`, one module per resource), and above that [`ui`] (the web UI
//!    under `/ui/`, a client of the REST API in process).
//! 6. [`app`]: the wiring: start-up, the server loop, workers, the `LISTEN/NOTIFY` listener.
//!
//! [`cli`] (`granary plugin ...`, client commands over the REST API) stands apart: it talks to a
//! server over HTTP.

pub mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod config;
pub mod content;
pub mod db;
pub mod domain;
pub mod error;
pub mod plugins;
pub mod progress;
pub mod rbac;
pub mod secrets;
pub mod state;
pub mod storage;
pub mod sync;
pub mod tasks;
pub mod ui;
