//! Container syncs from a real registry, Debian's `docker-registry`, filled by skopeo: tags
//! filtered by `include_tags` and `exclude_tags`, a multi-architecture index with its manifests,
//! blobs downloaded during the sync (`immediate`) or at the first pull (`on_demand`), and a
//! registry behind a token service (Bearer challenges answered with the remote's credentials,
//! for the plugin's requests and the host's downloads alike); the mirror is then pulled from
//! Granary with skopeo, byte for byte what the upstream serves.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::container::{
    container_repository, digest, distribute, image_manifest, oci_layout, skopeo, tag_layout,
    write_blob,
};
use crate::support::pulp::{API, error_description};
use crate::support::registry::{DockerRegistry, TokenFront};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    a_sync_mirrors_filtered_tags_and_an_index_from_docker_registry,
    an_on_demand_sync_behind_a_token_service_fetches_blobs_at_first_pull,
);

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

/// Runs skopeo off the async runtime.
async fn run_skopeo(home: &Path, arguments: &[&str]) -> String {
    let home = home.to_owned();
    let arguments: Vec<String> = arguments.iter().map(|&a| a.to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let arguments: Vec<&str> = arguments.iter().map(String::as_str).collect();
        skopeo(&home, &arguments)
    })
    .await
    .unwrap()
}

/// Pushes the image tagged `tag` in the OCI layout `layout` (every manifest of an index) to
/// `registry` as `library/app:<tag>`.
async fn push(home: &Path, layout: &Path, tag: &str, registry: &DockerRegistry) {
    let source = format!("oci:{}:{tag}", layout.display());
    let target = format!("docker://{}/library/app:{tag}", registry.authority());
    run_skopeo(
        home,
        &["copy", "--all", "--dest-tls-verify=false", &source, &target],
    )
    .await;
}

/// Copies `image` (every manifest of an index) into a new OCI layout at `into`, as `tag`;
/// returns the digests of the blobs it holds.
async fn pull(home: &Path, image: &str, into: &Path, tag: &str) -> Vec<String> {
    let target = format!("oci:{}:{tag}", into.display());
    run_skopeo(
        home,
        &["copy", "--all", "--src-tls-verify=false", image, &target],
    )
    .await;
    let mut blobs: Vec<String> = std::fs::read_dir(into.join("blobs/sha256"))
        .unwrap()
        .map(|entry| format!("sha256:{}", entry.unwrap().file_name().to_string_lossy()))
        .collect();
    blobs.sort();
    blobs
}

/// A layer's bytes, distinct per `seed`.
fn layer(seed: u32, len: u32) -> Vec<u8> {
    (0..len)
        .map(|i| ((i * 31 + seed * 17) % 251) as u8)
        .collect()
}

/// The tags skopeo lists for `image` (a repository without a tag).
async fn listed_tags(home: &Path, image: &str) -> Value {
    let listed = run_skopeo(home, &["list-tags", "--tls-verify=false", image]).await;
    serde_json::from_str::<Value>(&listed).unwrap()["Tags"].clone()
}

async fn a_sync_mirrors_filtered_tags_and_an_index_from_docker_registry(backend: Backend) {
    let app = TestApp::start(backend).await;
    let registry = DockerRegistry::start().await;
    let work = tempfile::tempdir().unwrap();
    let home = work.path();

    // Upstream: `v1` and `latest` (one image), `v2-rc` (another), and `multi`, an index of an
    // amd64 and an arm64 image.
    let single = home.join("single");
    let image = oci_layout(&single, "v1", &layer(1, 200_000));
    push(home, &single, "v1", &registry).await;
    tag_layout(&single, "latest", &image, OCI_MANIFEST);
    push(home, &single, "latest", &registry).await;
    let candidate = home.join("candidate");
    oci_layout(&candidate, "v2-rc", &layer(2, 1000));
    push(home, &candidate, "v2-rc", &registry).await;
    let multi = home.join("multi");
    let platforms: Vec<Value> = [("amd64", 3), ("arm64", 4)]
        .into_iter()
        .map(|(architecture, seed)| {
            let manifest = image_manifest(&multi, &layer(seed, 50_000), architecture);
            json!({
                "mediaType": OCI_MANIFEST,
                "digest": digest(&manifest),
                "size": manifest.len(),
                "platform": {"architecture": architecture, "os": "linux"},
            })
        })
        .collect();
    let index = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": platforms,
    })
    .to_string()
    .into_bytes();
    write_blob(&multi, &index);
    tag_layout(
        &multi,
        "multi",
        &index,
        "application/vnd.oci.image.index.v1+json",
    );
    push(home, &multi, "multi", &registry).await;

    let repository = container_repository(&app, "mirror").await;
    let remote = app
        .create(
            &format!("{API}/remotes/container/container/"),
            json!({
                "name": "upstream",
                "url": registry.url,
                "upstream_name": "library/app",
                "include_tags": ["v*", "multi"],
                "exclude_tags": ["*-rc"],
                "policy": "immediate",
            }),
        )
        .await;
    let task = app
        .sync(&repository, remote["pulp_href"].as_str().unwrap(), false)
        .await;
    assert_eq!(task["state"], "completed", "{}", error_description(&task));
    distribute(&app, &repository, "mirror/app").await;

    let granary = app.url("");
    let granary = granary.trim_start_matches("http://").trim_end_matches('/');
    let mirrored = format!("docker://{granary}/mirror/app");
    let upstream = format!("docker://{}/library/app", registry.authority());
    assert_eq!(
        listed_tags(home, &mirrored).await,
        json!(["multi", "v1"]),
        "the included tags, without the excluded one"
    );
    // The index is served as the upstream serves it, byte for byte.
    let raw = |image: String| async move {
        run_skopeo(home, &["inspect", "--raw", "--tls-verify=false", &image]).await
    };
    assert_eq!(
        raw(format!("{mirrored}:multi")).await,
        raw(format!("{upstream}:multi")).await
    );
    // docker's way of asking: one `Accept` line per media type. Asked with an index type among
    // its lines, the tag gives the index; asked with image manifests only (the same first
    // line), the amd64 image: kept answers tell the two requests apart.
    let manifest_of = |accepted: &'static [&'static str]| {
        let url = app.url("/v2/mirror/app/manifests/multi");
        async move {
            let mut request = reqwest::Client::new().get(url);
            for media_type in accepted {
                request = request.header("accept", *media_type);
            }
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .to_owned()
        }
    };
    const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    for _ in 0..2 {
        assert_eq!(manifest_of(&[OCI_MANIFEST, OCI_INDEX]).await, OCI_INDEX);
        assert_eq!(manifest_of(&[OCI_MANIFEST]).await, OCI_MANIFEST);
    }
    // Both platforms' images come out of Granary as they come out of the registry.
    let from_granary = pull(
        home,
        &format!("{mirrored}:multi"),
        &home.join("from-granary"),
        "multi",
    )
    .await;
    let from_registry = pull(
        home,
        &format!("{upstream}:multi"),
        &home.join("from-registry"),
        "multi",
    )
    .await;
    assert_eq!(from_granary, from_registry);
    assert_eq!(
        from_granary.len(),
        7,
        "index, 2 manifests, 2 configs, 2 layers"
    );
    // Downloaded during the sync: every blob of the index is stored.
    for blob in &from_registry {
        assert_eq!(
            app.artifacts_with_sha256(blob.trim_start_matches("sha256:"))
                .await,
            1,
            "{blob} is stored"
        );
    }
    // The upstream's tag that was not included is not there.
    let missing = reqwest::get(app.url("/v2/mirror/app/manifests/v2-rc"))
        .await
        .unwrap();
    assert_eq!(missing.status(), reqwest::StatusCode::NOT_FOUND);

    // A remote without its upstream_name is refused at creation, on that field.
    let (status, refused) = app
        .post_json(
            &format!("{API}/remotes/container/container/"),
            &json!({"name": "nameless", "url": registry.url}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::BAD_REQUEST, "{refused:#}");
    assert!(refused.to_string().contains("upstream_name"), "{refused:#}");
}

async fn an_on_demand_sync_behind_a_token_service_fetches_blobs_at_first_pull(backend: Backend) {
    let app = TestApp::start(backend).await;
    let registry = DockerRegistry::start().await;
    let front = TokenFront::start(&registry.url, "puller", "s3cret").await;
    let work = tempfile::tempdir().unwrap();
    let home = work.path();
    let image = home.join("image");
    let manifest = oci_layout(&image, "v1", &layer(5, 300_000));
    push(home, &image, "v1", &registry).await;
    let pushed_layer = {
        let raw = run_skopeo(
            home,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                &format!("docker://{}/library/app:v1", registry.authority()),
            ],
        )
        .await;
        let raw: Value = serde_json::from_str(&raw).unwrap();
        raw["layers"][0]["digest"].as_str().unwrap().to_owned()
    };
    let config_digest = serde_json::from_slice::<Value>(&manifest).unwrap()["config"]["digest"]
        .as_str()
        .unwrap()
        .to_owned();

    let repository = container_repository(&app, "behind-tokens").await;
    let remote_body = |password: &str| {
        json!({
            "name": format!("front-{password}"),
            "url": front.url,
            "upstream_name": "library/app",
            "username": "puller",
            "password": password,
            "policy": "on_demand",
        })
    };
    // Wrong credentials: the token service refuses them, and the task says so.
    let wrong = app
        .create(
            &format!("{API}/remotes/container/container/"),
            remote_body("wrong"),
        )
        .await;
    let task = app
        .sync(&repository, wrong["pulp_href"].as_str().unwrap(), false)
        .await;
    assert_eq!(task["state"], "failed", "{task:#}");
    assert!(
        error_description(&task).contains("check the remote's username and password"),
        "{}",
        error_description(&task)
    );

    let remote = app
        .create(
            &format!("{API}/remotes/container/container/"),
            remote_body("s3cret"),
        )
        .await;
    let task = app
        .sync(&repository, remote["pulp_href"].as_str().unwrap(), false)
        .await;
    assert_eq!(task["state"], "completed", "{}", error_description(&task));
    assert!(front.challenged() >= 1 && front.tokens_issued() >= 1);
    // Nothing of the image's blobs was downloaded by the sync.
    for blob in [&pushed_layer, &config_digest] {
        assert_eq!(
            app.artifacts_with_sha256(blob.trim_start_matches("sha256:"))
                .await,
            0,
            "{blob} is not downloaded yet"
        );
    }

    distribute(&app, &repository, "cached/app").await;
    let granary = app.url("");
    let granary = granary.trim_start_matches("http://").trim_end_matches('/');
    let pulled = pull(
        home,
        &format!("docker://{granary}/cached/app:v1"),
        &home.join("pulled"),
        "v1",
    )
    .await;
    assert!(pulled.contains(&pushed_layer), "{pulled:?}");
    // The first pull fetched the blobs through the token service and kept them.
    for blob in [&pushed_layer, &config_digest] {
        assert_eq!(
            app.artifacts_with_sha256(blob.trim_start_matches("sha256:"))
                .await,
            1,
            "{blob} is kept"
        );
    }
    // Kept: pulled again with the upstream gone.
    drop(front);
    drop(registry);
    let again: PathBuf = home.join("again");
    let pulled_again = pull(
        home,
        &format!("docker://{granary}/cached/app:v1"),
        &again,
        "v1",
    )
    .await;
    assert_eq!(pulled_again, pulled);
}
