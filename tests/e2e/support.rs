//! Test harness: the server process, a counting upstream, generated fixtures, `curl`, and the
//! handful of REST round trips every scenario repeats.

pub mod app;
pub mod browser;
pub mod cluster;
pub mod curl;
pub mod fixture;
pub mod proxy;
pub mod pulp;
pub mod pulpcore;
pub mod python;
pub mod registry;
pub mod requests;
pub mod tls;
pub mod tools;
pub mod upstream;
pub mod verdaccio;

pub use app::{AppOptions, Backend, TestApp};
pub use fixture::Fixture;
pub use upstream::Upstream;

/// Turns `async fn scenario(backend: Backend)` into a module with two tests, `sqlite` and
/// `postgres`, so `cargo test scenario` runs both and the report names the backend that failed.
///
/// The PostgreSQL variant needs `GRANARY_TEST_DATABASE_URL`; without it, it says it was skipped
/// and passes, so a laptop without PostgreSQL can still run the suite.
macro_rules! sqlite_and_postgres {
    ($($scenario:ident),+ $(,)?) => {
        $(
            mod $scenario {
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    super::$scenario($crate::support::Backend::Sqlite).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(backend) = $crate::support::Backend::postgres_from_env() else {
                        eprintln!("skipped: GRANARY_TEST_DATABASE_URL not set");
                        return;
                    };
                    super::$scenario(backend).await;
                }
            }
        )+
    };
}
