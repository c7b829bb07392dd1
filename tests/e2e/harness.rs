//! The harness checks itself, without a server: if the counting upstream miscounted or kept
//! serving after `stop`, the scenarios that rely on it would prove nothing.

use crate::support::curl::Downloads;
use crate::support::fixture::parse_manifest;
use crate::support::{Fixture, Upstream};

/// The upstream serves every fixture file and the manifest, counts each request, and after
/// `stop` serves nothing more, even to a client that had a connection open.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_serves_counts_and_stops() {
    let fixture = Fixture::generate(30, 9);
    let mut upstream = Upstream::serve(&fixture).await;
    let downloads = Downloads::new();

    let manifest = downloads
        .get(&upstream.manifest_url())
        .await
        .expect("the manifest is served");
    assert_eq!(
        parse_manifest(&String::from_utf8(manifest).unwrap()),
        fixture.entries()
    );
    downloads
        .assert_all_served(&upstream.base_url(), &fixture.files)
        .await;
    assert_eq!(upstream.manifest_requests(), 1);
    assert_eq!(upstream.file_requests(), fixture.files.len());
    assert!(
        fixture
            .files
            .iter()
            .all(|file| upstream.requests_for(&file.relative_path) == 1)
    );

    let client = reqwest::Client::new();
    let kept_alive = client.get(upstream.manifest_url()).send().await.unwrap();
    assert!(kept_alive.status().is_success());
    kept_alive.bytes().await.unwrap();
    upstream.stop().await;
    assert!(client.get(upstream.manifest_url()).send().await.is_err());
    assert!(downloads.get(&upstream.manifest_url()).await.is_err());
}
