//! The container content type (`plugins/container`) end to end with skopeo (Debian's package,
//! installed when missing): an image in an OCI layout on disk copied to a new name at Granary
//! (the push creates its repository and distribution; skopeo streams the layer, gzipped, into an
//! upload session), inspected, its tags listed, and copied back byte for byte, with credentials
//! through the Bearer token flow and anonymously; then deleted, tag and all. And oras (oras-py
//! from PyPI) attaching an SBOM and a signature to an artifact, found through the referrers API.
//! Over plain HTTP: a manifest past the spec's 4 MiB kept byte for byte, and tag lists and
//! referrers paged with `n` and `Link: <…>; rel="next"`. And a `private` distribution: pulled
//! only by those who may view its repository, left out of the catalogue.

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use crate::support::pulp::{API, created_resources};
use crate::support::tools::{debian_tool, python_venv};
use crate::support::{Backend, TestApp};

sqlite_and_postgres!(
    skopeo_copies_an_image_to_a_new_name_and_back,
    oras_finds_the_artifacts_attached_to_an_image_through_referrers,
    a_mount_takes_only_blobs_the_pusher_may_read_at_the_source,
    large_manifests_are_kept_and_long_lists_come_in_linked_pages,
    a_private_distribution_answers_only_those_who_may_view_its_repository,
    pulp_clis_container_commands_manage_repositories_remotes_and_distributions,
    a_push_makes_a_push_repository_which_goes_with_its_distribution,
);

pub(crate) const CONTAINER: &str = env!("GRANARY_PLUGIN_CONTAINER_WASM");

pub(crate) fn digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Writes `bytes` into the blobs of the OCI image layout at `dir`; returns their digest.
pub(crate) fn write_blob(dir: &Path, bytes: &[u8]) -> String {
    let blobs = dir.join("blobs").join("sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let digest = digest(bytes);
    std::fs::write(blobs.join(digest.trim_start_matches("sha256:")), bytes).unwrap();
    digest
}

/// Writes an image of one `layer` (uncompressed tar media type) and its config for
/// `architecture` into the blobs of the layout at `dir`; returns the manifest's bytes.
pub(crate) fn image_manifest(dir: &Path, layer: &[u8], architecture: &str) -> Vec<u8> {
    let layer_digest = write_blob(dir, layer);
    let config = json!({
        "architecture": architecture,
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    })
    .to_string()
    .into_bytes();
    let config_digest = write_blob(dir, &config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": config_digest,
            "size": config.len(),
        },
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar",
            "digest": layer_digest,
            "size": layer.len(),
        }],
    })
    .to_string()
    .into_bytes();
    write_blob(dir, &manifest);
    manifest
}

/// Writes the layout's `index.json` (and `oci-layout`), naming the manifest or index `top` of
/// `media_type` as `tag`.
pub(crate) fn tag_layout(dir: &Path, tag: &str, top: &[u8], media_type: &str) {
    let index = json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": media_type,
            "digest": digest(top),
            "size": top.len(),
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
}

/// Writes an OCI image layout at `dir` with one image tagged `tag`: a `layer` (uncompressed tar
/// media type) and its config. Returns the manifest's bytes.
pub(crate) fn oci_layout(dir: &Path, tag: &str, layer: &[u8]) -> Vec<u8> {
    let manifest = image_manifest(dir, layer, "amd64");
    tag_layout(
        dir,
        tag,
        &manifest,
        "application/vnd.oci.image.manifest.v1+json",
    );
    manifest
}

/// Installs the container plugin, unless it is installed.
async fn install_container(app: &TestApp) {
    let component = std::fs::read(CONTAINER).expect("the container plugin is built");
    if app.get(&format!("{API}/plugins/container/")).await.0 != reqwest::StatusCode::OK {
        let (status, plugin) = app.install_plugin(&component).await;
        assert_eq!(status, reqwest::StatusCode::CREATED, "{plugin:#}");
    }
}

/// Installs the container plugin and creates a repository; returns its href.
pub(crate) async fn container_repository(app: &TestApp, name: &str) -> String {
    install_container(app).await;
    let repository = app
        .create(
            &format!("{API}/repositories/container/container/"),
            json!({"name": name}),
        )
        .await;
    repository["pulp_href"].as_str().unwrap().to_owned()
}

/// Distributes the latest version of `repository` at `base_path`.
pub(crate) async fn distribute(app: &TestApp, repository: &str, base_path: &str) {
    let task = app
        .run_task(
            &format!("{API}/distributions/container/container/"),
            json!({"name": base_path, "base_path": base_path, "repository": repository}),
        )
        .await;
    assert_eq!(created_resources(&task).len(), 1, "{task:#}");
}

/// Runs skopeo with `arguments`, its auth file in `home`; returns its standard output.
pub(crate) fn skopeo(home: &Path, arguments: &[&str]) -> String {
    let program = debian_tool("skopeo", "skopeo");
    let output = Command::new(program)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .env("HOME", home)
        .arg("--insecure-policy")
        .args(arguments)
        .output()
        .expect("run skopeo");
    assert!(
        output.status.success(),
        "skopeo {arguments:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn skopeo_copies_an_image_to_a_new_name_and_back(backend: Backend) {
    let app = TestApp::start(backend).await;
    let component = std::fs::read(CONTAINER).expect("the container plugin is built");
    let (status, plugin) = app.install_plugin(&component).await;
    assert_eq!(status, reqwest::StatusCode::CREATED, "{plugin:#}");
    let work = tempfile::tempdir().unwrap();
    let source = work.path().join("source");
    // Larger than one read of a body: the layer streams in chunks into an upload session.
    let layer: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let manifest = oci_layout(&source, "v1", &layer);
    let registry = app.url("");
    let registry = registry.trim_start_matches("http://").trim_end_matches('/');
    let image = format!("docker://{registry}/team/app:v1");
    let (user, password) = app.credentials();
    let credentials = format!("{user}:{password}");
    let home = work.path();

    let (work_path, source_path) = (home.to_owned(), format!("oci:{}:v1", source.display()));
    let (image_clone, credentials_clone) = (image.clone(), credentials.clone());
    tokio::task::spawn_blocking(move || {
        skopeo(
            &work_path,
            &[
                "copy",
                "--dest-tls-verify=false",
                "--dest-creds",
                &credentials_clone,
                &source_path,
                &image_clone,
            ],
        )
    })
    .await
    .unwrap();

    // Writes need credentials, before a byte is read.
    let anonymous = reqwest::Client::new()
        .post(app.url("/v2/team/app/blobs/uploads/"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    // The push created the repository and its distribution at the name.
    let (_, distributions) = app
        .get(&format!(
            "{API}/distributions/container/container/?base_path=team/app"
        ))
        .await;
    assert_eq!(distributions["count"], 1, "{distributions:#}");

    let (home_path, image_clone, credentials_clone) =
        (home.to_owned(), image.clone(), credentials.clone());
    let (raw, tags, anonymous) = tokio::task::spawn_blocking(move || {
        let raw = skopeo(
            &home_path,
            &[
                "inspect",
                "--raw",
                "--tls-verify=false",
                "--creds",
                &credentials_clone,
                &image_clone,
            ],
        );
        let repository = image_clone.trim_end_matches(":v1").to_owned();
        let tags = skopeo(
            &home_path,
            &[
                "list-tags",
                "--tls-verify=false",
                "--creds",
                &credentials_clone,
                &repository,
            ],
        );
        // Reads need no credentials: an anonymous token.
        let anonymous = skopeo(
            &home_path,
            &["inspect", "--tls-verify=false", "--no-creds", &image_clone],
        );
        (raw, tags, anonymous)
    })
    .await
    .unwrap();
    // skopeo compresses an uncompressed layer on its way to a registry: the manifest stored is
    // the one it pushed, with our config and its gzip of our layer.
    let pushed: Value = serde_json::from_str(raw.trim()).unwrap();
    let ours: Value = serde_json::from_slice(&manifest).unwrap();
    assert_eq!(pushed["config"], ours["config"], "{pushed:#}");
    let pushed_layer = pushed["layers"][0]["digest"].as_str().unwrap().to_owned();
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], json!(["v1"]), "{tags:#}");
    let inspected: Value = serde_json::from_str(&anonymous).unwrap();
    assert_eq!(
        inspected["Digest"],
        digest(raw.trim().as_bytes()),
        "{inspected:#}"
    );
    assert_eq!(inspected["Layers"], json!([pushed_layer]), "{inspected:#}");

    let (image_for_delete, credentials_for_delete) = (image.clone(), credentials.clone());
    // Back to disk: the same bytes.
    let copy = work.path().join("copy");
    let (home_path, copy_path) = (home.to_owned(), format!("oci:{}:v1", copy.display()));
    tokio::task::spawn_blocking(move || {
        skopeo(
            &home_path,
            &[
                "copy",
                "--src-tls-verify=false",
                "--src-creds",
                &credentials,
                &image,
                &copy_path,
            ],
        )
    })
    .await
    .unwrap();
    let pulled = std::fs::read(
        copy.join("blobs/sha256")
            .join(pushed_layer.trim_start_matches("sha256:")),
    )
    .expect("the layer was copied back");
    assert_eq!(
        digest(&pulled),
        pushed_layer,
        "the layer came back byte for byte"
    );
    // And the bytes are the ones Granary stores and serves.
    let served = reqwest::get(app.url(&format!("/v2/team/app/blobs/{pushed_layer}")))
        .await
        .unwrap();
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    assert!(served.bytes().await.unwrap() == pulled);

    // A cross-repository mount into a new name: the blob is added there without its bytes,
    // because the pusher may read it at `from`; from a name that has no such blob, an upload
    // starts instead.
    let mount = |from: &str| {
        let url = app.url(&format!(
            "/v2/team/copy/blobs/uploads/?mount={pushed_layer}&from={from}"
        ));
        let (user, password) = app.credentials();
        let request = reqwest::Client::new()
            .post(url)
            .basic_auth(user.to_owned(), Some(password.to_owned()));
        async move { request.send().await.unwrap() }
    };
    let mounted = mount("team/app").await;
    assert_eq!(mounted.status(), reqwest::StatusCode::CREATED);
    assert_eq!(
        mounted.headers()["location"],
        format!("/v2/team/copy/blobs/{pushed_layer}").as_str()
    );
    let copied = reqwest::get(app.url(&format!("/v2/team/copy/blobs/{pushed_layer}")))
        .await
        .unwrap();
    assert!(copied.bytes().await.unwrap() == pulled);
    let not_mounted = mount("team/nowhere").await;
    assert_eq!(not_mounted.status(), reqwest::StatusCode::ACCEPTED);
    assert!(not_mounted.headers().contains_key("docker-upload-uuid"));

    // Deleted: the manifest and the tag pointing at it leave the repository.
    let home_path = home.to_owned();
    let tags = tokio::task::spawn_blocking(move || {
        skopeo(
            &home_path,
            &[
                "delete",
                "--tls-verify=false",
                "--creds",
                &credentials_for_delete,
                &image_for_delete,
            ],
        );
        skopeo(
            &home_path,
            &[
                "list-tags",
                "--tls-verify=false",
                "--creds",
                &credentials_for_delete,
                image_for_delete.trim_end_matches(":v1"),
            ],
        )
    })
    .await
    .unwrap();
    let tags: Value = serde_json::from_str(&tags).unwrap();
    assert_eq!(tags["Tags"], json!([]), "{tags:#}");
    let gone = reqwest::get(app.url("/v2/team/app/manifests/v1"))
        .await
        .unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);

    // A blob is deleted too, by those who may delete, and is then unknown.
    let blob_url = app.url(&format!("/v2/team/app/blobs/{pushed_layer}"));
    let client = reqwest::Client::new();
    let anonymous = client.delete(&blob_url).send().await.unwrap();
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let deleted = client
        .delete(&blob_url)
        .basic_auth(user, Some(password))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), reqwest::StatusCode::ACCEPTED);
    let gone = reqwest::get(&blob_url).await.unwrap();
    assert_eq!(gone.status(), reqwest::StatusCode::NOT_FOUND);
    let body: Value = serde_json::from_slice(&gone.bytes().await.unwrap()).unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
}

async fn oras_finds_the_artifacts_attached_to_an_image_through_referrers(backend: Backend) {
    let app = TestApp::start(backend).await;
    // oras pushes to a new name: its first write, anonymous, is challenged with that name's
    // scope, and the push creates the repository.
    install_container(&app).await;
    let venv = tokio::task::spawn_blocking(|| python_venv("oras", &["oras>=0.2.40,<0.3"]))
        .await
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/e2e/fixtures/container/oras_referrers.py");
    let work = tempfile::tempdir().unwrap();
    let host = app.url("");
    let host = host
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let (user, password) = app.credentials();
    let mut command = Command::new(venv.join("bin/python"));
    command
        .arg(script)
        .args([host.as_str(), user, password, "team/app"])
        .arg(work.path());
    let output = tokio::task::spawn_blocking(move || command.output().unwrap())
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "oras failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let pushed: Value = serde_json::from_slice(&output.stdout).unwrap();
    let subject = pushed["subject"].as_str().unwrap();
    // The registry acknowledges the subject: it keeps referrers.
    assert_eq!(pushed["sbom_oci_subject"], subject, "{pushed:#}");

    let referrers = |query: &str| {
        let url = app.url(&format!("/v2/team/app/referrers/{subject}{query}"));
        async move {
            let response = reqwest::get(url).await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK);
            assert_eq!(
                response.headers()["content-type"],
                "application/vnd.oci.image.index.v1+json"
            );
            let filtered = response.headers().get("oci-filters-applied").cloned();
            let body = response.bytes().await.unwrap();
            (serde_json::from_slice::<Value>(&body).unwrap(), filtered)
        }
    };
    let (all, filtered) = referrers("").await;
    assert_eq!(filtered, None);
    let mut found: Vec<(String, String)> = all["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|descriptor| {
            (
                descriptor["digest"].as_str().unwrap().to_owned(),
                descriptor["artifactType"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    found.sort();
    let mut expected = vec![
        (
            pushed["sbom"].as_str().unwrap().to_owned(),
            "application/vnd.example.sbom".to_owned(),
        ),
        (
            pushed["signature"].as_str().unwrap().to_owned(),
            "application/vnd.example.signature".to_owned(),
        ),
    ];
    expected.sort();
    assert_eq!(found, expected, "{all:#}");

    let (sboms, filtered) = referrers("?artifactType=application/vnd.example.sbom").await;
    assert_eq!(filtered.unwrap(), "artifactType");
    assert_eq!(sboms["manifests"].as_array().unwrap().len(), 1, "{sboms:#}");
    assert_eq!(sboms["manifests"][0]["digest"], pushed["sbom"]);
    assert!(sboms["manifests"][0]["size"].as_u64().unwrap() > 0);

    // A subject nobody referred to yet has an empty list, not an error.
    let unknown = app.url(&format!("/v2/team/app/referrers/sha256:{}", "0".repeat(64)));
    let response = reqwest::get(unknown).await.unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let empty: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(empty["manifests"], json!([]));
}

async fn a_mount_takes_only_blobs_the_pusher_may_read_at_the_source(backend: Backend) {
    let app = TestApp::start(backend).await;
    // A private repository (an RBAC content guard) holding a blob the admin pushed.
    let repository = container_repository(&app, "private").await;
    let guard = app
        .create(
            &format!("{API}/contentguards/core/rbac/"),
            json!({"name": "private"}),
        )
        .await;
    app.run_task(
        &format!("{API}/distributions/container/container/"),
        json!({"name": "private", "base_path": "team/private", "repository": repository,
               "content_guard": guard["pulp_href"]}),
    )
    .await;
    let blob = b"a private layer".to_vec();
    let blob_digest = digest(&blob);
    let (admin, admin_password) = app.credentials();
    let client = reqwest::Client::new();
    let pushed = client
        .post(app.url(&format!(
            "/v2/team/private/blobs/uploads/?digest={blob_digest}"
        )))
        .basic_auth(admin, Some(admin_password))
        .body(blob.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), reqwest::StatusCode::CREATED);
    // Carol may push new images (she may create container repositories and distributions) but
    // may not read the private one.
    let carol = app.create_user("carol", "carol-password-1").await;
    for role in [
        "container.containerrepository_creator",
        "container.containerdistribution_creator",
    ] {
        app.create(
            &format!("{carol}roles/"),
            json!({"role": role, "content_object": null}),
        )
        .await;
    }
    let mount = |user: &str, password: &str, to: &str| {
        let request = client
            .post(app.url(&format!(
                "/v2/{to}/blobs/uploads/?mount={blob_digest}&from=team/private"
            )))
            .basic_auth(user, Some(password));
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(
        mount("carol", "carol-password-1", "carol/app").await,
        reqwest::StatusCode::ACCEPTED,
        "no mount: an upload starts instead"
    );
    let not_hers = reqwest::get(app.url(&format!("/v2/carol/app/blobs/{blob_digest}")))
        .await
        .unwrap();
    assert_eq!(not_hers.status(), reqwest::StatusCode::NOT_FOUND);
    // The admin may read it there, so the blob is mounted.
    assert_eq!(
        mount(admin, admin_password, "admin/app").await,
        reqwest::StatusCode::CREATED
    );
    let mounted = reqwest::get(app.url(&format!("/v2/admin/app/blobs/{blob_digest}")))
        .await
        .unwrap();
    assert_eq!(mounted.status(), reqwest::StatusCode::OK);
    assert!(mounted.bytes().await.unwrap() == blob);
}

/// The target of a `Link: <url>; rel="next"` header, if the answer has one.
fn next_page(response: &reqwest::Response) -> Option<String> {
    let link = response.headers().get("link")?.to_str().ok()?;
    assert!(link.ends_with("; rel=\"next\""), "{link}");
    Some(link.split(['<', '>']).nth(1)?.to_owned())
}

/// Every page of a paged list from `url` on, following `Link` headers: the entries of `field`
/// of each page, and how many pages there were.
async fn all_pages(client: &reqwest::Client, mut url: String, field: &str) -> (Vec<Value>, usize) {
    let (mut entries, mut pages) = (Vec::new(), 0);
    loop {
        let response = client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
        let next = next_page(&response);
        let page: Value = serde_json::from_str(&response.text().await.unwrap()).unwrap();
        entries.extend(page[field].as_array().unwrap().iter().cloned());
        pages += 1;
        match next {
            Some(next) => url = next,
            None => return (entries, pages),
        }
    }
}

async fn large_manifests_are_kept_and_long_lists_come_in_linked_pages(backend: Backend) {
    let app = TestApp::start(backend).await;
    install_container(&app).await;
    let (admin, password) = app.credentials();
    let client = reqwest::Client::new();
    let push = |path: String, body: Vec<u8>, content_type: &'static str| {
        let request = client
            .request(
                if path.contains("/manifests/") {
                    reqwest::Method::PUT
                } else {
                    reqwest::Method::POST
                },
                app.url(&path),
            )
            .basic_auth(admin, Some(password))
            .header("content-type", content_type)
            .body(body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status();
            assert_eq!(
                status,
                reqwest::StatusCode::CREATED,
                "{path}: {}",
                response.text().await.unwrap()
            );
        }
    };
    // A config blob, then an artifact manifest with 5 MiB of annotations naming it.
    let config = b"{}".to_vec();
    let config_digest = digest(&config);
    push(
        format!("/v2/team/big/blobs/uploads/?digest={config_digest}"),
        config.clone(),
        "application/octet-stream",
    )
    .await;
    let manifest_of = |annotations: Value, subject: Option<&str>| {
        let mut manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.example.note",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [],
            "annotations": annotations,
        });
        if let Some(subject) = subject {
            manifest["subject"] = json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
                                        "digest": subject, "size": 1});
        }
        manifest.to_string().into_bytes()
    };
    let large = manifest_of(json!({"note": "x".repeat(5 << 20)}), None);
    assert!(large.len() > 5 << 20);
    let large_digest = digest(&large);
    push(
        "/v2/team/big/manifests/large".into(),
        large.clone(),
        "application/vnd.oci.image.manifest.v1+json",
    )
    .await;
    let pulled = client
        .get(app.url("/v2/team/big/manifests/large"))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(pulled.status(), reqwest::StatusCode::OK);
    assert_eq!(
        pulled.headers()["docker-content-digest"],
        large_digest.as_str()
    );
    assert!(pulled.bytes().await.unwrap() == large, "kept byte for byte");

    // Five referrers of the large manifest, each tagged: both lists in pages of two.
    let mut referrers = Vec::new();
    for i in 0..5 {
        let referrer = manifest_of(json!({"n": i.to_string()}), Some(&large_digest));
        referrers.push(digest(&referrer));
        push(
            format!("/v2/team/big/manifests/note-{i}"),
            referrer,
            "application/vnd.oci.image.manifest.v1+json",
        )
        .await;
    }
    let (tags, pages) = all_pages(&client, app.url("/v2/team/big/tags/list?n=2"), "tags").await;
    let tags: Vec<&str> = tags.iter().map(|tag| tag.as_str().unwrap()).collect();
    assert_eq!(
        tags,
        ["large", "note-0", "note-1", "note-2", "note-3", "note-4"]
    );
    assert_eq!(pages, 3);
    let first = app.url(&format!(
        "/v2/team/big/referrers/{large_digest}?n=2&artifactType=application/vnd.example.note"
    ));
    let (listed, pages) = all_pages(&client, first, "manifests").await;
    let mut listed: Vec<String> = listed
        .iter()
        .map(|descriptor| descriptor["digest"].as_str().unwrap().to_owned())
        .collect();
    referrers.sort();
    listed.sort();
    assert_eq!(listed, referrers);
    assert_eq!(pages, 3);
}

/// Pushes, as the admin and over plain HTTP, an image of one config blob and no layers to
/// `name:tag` (the push creates the name's repository and distribution); returns the manifest.
async fn push_config_only_image(app: &TestApp, name: &str, tag: &str) -> Vec<u8> {
    let (admin, password) = app.credentials();
    let client = reqwest::Client::new();
    let config = b"{}".to_vec();
    let config_digest = digest(&config);
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config_digest, "size": config.len()},
        "layers": [],
    })
    .to_string()
    .into_bytes();
    let blob = client
        .post(app.url(&format!("/v2/{name}/blobs/uploads/?digest={config_digest}")))
        .basic_auth(admin, Some(password))
        .body(config)
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), reqwest::StatusCode::CREATED);
    let pushed = client
        .put(app.url(&format!("/v2/{name}/manifests/{tag}")))
        .basic_auth(admin, Some(password))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(pushed.status(), reqwest::StatusCode::CREATED);
    manifest
}

async fn a_private_distribution_answers_only_those_who_may_view_its_repository(backend: Backend) {
    let app = TestApp::start(backend).await;
    install_container(&app).await;
    let (admin, password) = app.credentials();
    let client = reqwest::Client::new();
    // An image pushed to two names: the push creates each repository and distribution.
    let manifest = push_config_only_image(&app, "team/secret", "v1").await;
    push_config_only_image(&app, "team/open", "v1").await;
    let listed = app
        .get_json(&format!(
            "{API}/distributions/container/container/?base_path=team/secret"
        ))
        .await;
    let distribution = &listed["results"][0];
    assert_eq!(distribution["private"], false, "public unless made private");
    let repository = distribution["repository"].as_str().unwrap().to_owned();
    let (status, task) = app
        .patch_json(
            distribution["pulp_href"].as_str().unwrap(),
            &json!({"private": true}),
        )
        .await;
    assert_eq!(status, reqwest::StatusCode::ACCEPTED, "{task}");
    app.wait_task(task["task"].as_str().unwrap()).await;
    let private = app
        .get_json(&format!("{API}/distributions/?private=true"))
        .await;
    assert_eq!(private["count"], 1, "{private:#}");

    let pull = |credentials: Option<(&str, &str)>| {
        let mut request = client
            .get(app.url("/v2/team/secret/manifests/v1"))
            .header("accept", "application/vnd.oci.image.manifest.v1+json");
        if let Some((user, password)) = credentials {
            request = request.basic_auth(user, Some(password));
        }
        async move { request.send().await.unwrap() }
    };
    // Anonymous: asked to authenticate, with the registry's Bearer challenge for a pull.
    let anonymous = pull(None).await;
    assert_eq!(anonymous.status(), reqwest::StatusCode::UNAUTHORIZED);
    let challenge = anonymous.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        challenge.starts_with("Bearer ") && challenge.contains("repository:team/secret:pull"),
        "{challenge}"
    );
    // A user without a role: refused; with the repository's viewer role: served.
    let carol = app.create_user("carol", "carol-password-1").await;
    let carols = Some(("carol", "carol-password-1"));
    assert_eq!(pull(carols).await.status(), reqwest::StatusCode::FORBIDDEN);
    app.create(
        &format!("{carol}roles/"),
        json!({"role": "container.containerrepository_viewer", "content_object": repository}),
    )
    .await;
    let served = pull(carols).await;
    assert_eq!(served.status(), reqwest::StatusCode::OK);
    assert!(served.bytes().await.unwrap() == manifest);
    assert_eq!(
        pull(Some((admin, password))).await.status(),
        reqwest::StatusCode::OK
    );
    // The public name is still anyone's, and only it is in the catalogue.
    let open = reqwest::get(app.url("/v2/team/open/manifests/v1"))
        .await
        .unwrap();
    assert_eq!(open.status(), reqwest::StatusCode::OK);
    let catalog: Value = serde_json::from_str(
        &reqwest::get(app.url("/v2/_catalog"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(catalog["repositories"], json!(["team/open"]));
}

async fn pulp_clis_container_commands_manage_repositories_remotes_and_distributions(
    backend: Backend,
) {
    let app = TestApp::start(backend).await;
    install_container(&app).await;
    let pulp = crate::pulp_cli::PulpCli::new(&app);
    let repository = pulp
        .run(&["container", "repository", "create", "--name", "app"])
        .await;
    assert_eq!(repository["name"], "app");
    let remote = pulp
        .run(&[
            "container",
            "remote",
            "create",
            "--name",
            "hub",
            "--url",
            "https://registry.example",
            "--upstream-name",
            "library/alpine",
        ])
        .await;
    assert_eq!(remote["upstream_name"], "library/alpine");
    let distribution = pulp
        .run(&[
            "container",
            "distribution",
            "create",
            "--name",
            "app",
            "--base-path",
            "team/app",
            "--repository",
            "app",
            "--private",
        ])
        .await;
    assert_eq!(distribution["private"], true, "{distribution:#}");
    assert_eq!(distribution["repository"], repository["pulp_href"]);
    pulp.run(&[
        "container",
        "distribution",
        "update",
        "--name",
        "app",
        "--public",
    ])
    .await;
    let shown = pulp
        .run(&["container", "distribution", "show", "--name", "app"])
        .await;
    assert_eq!(shown["private"], false);
    let listed = pulp.run(&["container", "repository", "list"]).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1));
    pulp.run(&["container", "distribution", "destroy", "--name", "app"])
        .await;
    pulp.run(&["container", "remote", "destroy", "--name", "hub"])
        .await;
    pulp.run(&["container", "repository", "destroy", "--name", "app"])
        .await;
    assert_eq!(
        pulp.run(&["container", "repository", "list"]).await,
        json!([])
    );
}

async fn a_push_makes_a_push_repository_which_goes_with_its_distribution(backend: Backend) {
    let app = TestApp::start(backend).await;
    install_container(&app).await;
    let manifest = push_config_only_image(&app, "team/web", "1.0").await;
    let pulp = crate::pulp_cli::PulpCli::new(&app);

    // The push made a push repository, listed apart from the repositories REST creates.
    let pushed = pulp
        .run(&["container", "repository", "--type", "push", "list"])
        .await;
    assert_eq!(pushed.as_array().map(Vec::len), Some(1), "{pushed:#}");
    assert_eq!(pushed[0]["name"], "team/web");
    let repository = pushed[0]["pulp_href"].as_str().unwrap().to_owned();
    assert!(
        repository.contains("/repositories/container/container-push/"),
        "{repository}"
    );
    assert_eq!(
        pulp.run(&["container", "repository", "list"]).await,
        json!([])
    );
    let shown = pulp
        .run(&[
            "container",
            "repository",
            "--type",
            "push",
            "show",
            "--name",
            "team/web",
        ])
        .await;
    assert_eq!(shown["pulp_href"], repository.as_str());
    let versions = pulp
        .run(&[
            "container",
            "repository",
            "--type",
            "push",
            "version",
            "list",
            "--repository",
            "team/web",
        ])
        .await;
    assert_eq!(
        versions[0]["pulp_href"], shown["latest_version_href"],
        "{versions:#}"
    );
    let distribution = pulp
        .run(&["container", "distribution", "show", "--name", "team/web"])
        .await;
    assert_eq!(distribution["repository"], repository.as_str());

    // pulp-cli's content filters: tags by name, manifests and blobs by digest.
    let content = |kind: &'static str, filter: &'static [&'static str]| {
        let pulp = &pulp;
        async move {
            let mut args = vec!["container", "content", "--type", kind, "list"];
            args.extend(filter);
            pulp.run(&args).await
        }
    };
    let tags = content("tag", &["--name", "1.0"]).await;
    assert_eq!(tags.as_array().map(Vec::len), Some(1), "{tags:#}");
    assert_eq!(content("tag", &["--name", "2.0"]).await, json!([]));
    let manifest_digest = digest(&manifest);
    let by_digest = pulp
        .run(&[
            "container",
            "content",
            "--type",
            "manifest",
            "list",
            "--digest",
            &manifest_digest,
        ])
        .await;
    assert_eq!(by_digest.as_array().map(Vec::len), Some(1), "{by_digest:#}");
    assert_eq!(by_digest[0]["digest"], manifest_digest.as_str());
    let config_digest = digest(b"{}");
    let absent = digest(b"absent");
    let blobs = pulp
        .run(&[
            "container",
            "content",
            "--type",
            "blob",
            "list",
            "--digest-in",
            &config_digest,
            "--digest-in",
            &absent,
        ])
        .await;
    assert_eq!(blobs.as_array().map(Vec::len), Some(1), "{blobs:#}");
    assert_eq!(blobs[0]["digest"], config_digest.as_str());

    // REST neither creates, deletes, syncs nor modifies a push repository (Pulp's 405s).
    let not_allowed = reqwest::StatusCode::METHOD_NOT_ALLOWED;
    let (status, body) = app
        .post_json(
            &format!("{API}/repositories/container/container-push/"),
            &json!({"name": "made-by-hand"}),
        )
        .await;
    assert_eq!(status, not_allowed, "{body}");
    assert_eq!(app.delete_json(&repository).await.0, not_allowed);
    for action in ["sync/", "modify/"] {
        let (status, body) = app
            .post_json(&format!("{repository}{action}"), &json!({}))
            .await;
        assert_eq!(status, not_allowed, "{action}: {body}");
    }
    // Its versions are kept: the default policy refuses their deletion, as pulp_container's.
    let latest = shown["latest_version_href"].as_str().unwrap();
    assert_eq!(
        app.delete_json(latest).await.0,
        reqwest::StatusCode::FORBIDDEN
    );

    // Deleting the distribution deletes its push repository.
    pulp.run(&["container", "distribution", "destroy", "--name", "team/web"])
        .await;
    assert_eq!(
        pulp.run(&["container", "repository", "--type", "push", "list"])
            .await,
        json!([])
    );
    assert_eq!(app.get(&repository).await.0, reqwest::StatusCode::NOT_FOUND);
}
