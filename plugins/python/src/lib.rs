//! Granary's `python` content type: Pulp's `pulp_python` as a WebAssembly component.
//!
//! # Layout
//!
//! Format knowledge, pure and unit-tested natively:
//! - `name.rs`: project name normalization and wheel/sdist file names;
//! - `pep440.rs`: versions and specifiers;
//! - `metadata.rs`: core metadata (`METADATA`, `PKG-INFO`);
//! - `archive.rs`: the metadata file of a wheel (zip) or an sdist (tar.gz, zip);
//! - `package.rs`: one unit, its paths, natural key and metadata JSON;
//! - `simple.rs`: rendering the simple API and `Accept` negotiation;
//! - `upstream.rs`: reading an upstream simple index;
//! - `filters.rs`: the remote's `includes`/`excludes`/... fields.

pub mod archive;
pub mod filters;
pub mod metadata;
pub mod name;
pub mod package;
pub mod pep440;
pub mod simple;
pub mod upstream;
