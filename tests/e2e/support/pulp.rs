//! The Pulp 3 round trips scenarios repeat: create a remote and a repository, sync, publish,
//! distribute, list content. Each asserts the status code the contract promises, so a scenario
//! only spells out what it is about.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::app::TestApp;

pub const API: &str = "/pulp/api/v3";

/// `value[key]` as a string, with the whole value in the panic message if it is not one.
pub fn str_field<'a>(value: &'a Value, key: &str) -> &'a str {
    value[key]
        .as_str()
        .unwrap_or_else(|| panic!("no string {key:?} in {value:#}"))
}

/// The task's `error.description`, lower-cased, or a panic if the task has none.
pub fn error_description(task: &Value) -> String {
    task["error"]["description"]
        .as_str()
        .unwrap_or_else(|| panic!("the task has no error.description: {task:#}"))
        .to_lowercase()
}

/// `href`s in a task's `created_resources`.
pub fn created_resources(task: &Value) -> Vec<String> {
    task["created_resources"]
        .as_array()
        .unwrap_or_else(|| panic!("created_resources is not a list: {task:#}"))
        .iter()
        .map(|href| {
            href.as_str()
                .expect("created resources are hrefs")
                .to_owned()
        })
        .collect()
}

/// The `count` of one content type in a version's `content_summary` section (`added`,
/// `removed`, `present`); an absent type counts zero.
pub fn summary_count(version: &Value, section: &str, content_type: &str) -> u64 {
    let entry = &version["content_summary"][section][content_type];
    if entry.is_null() {
        return 0;
    }
    entry["count"]
        .as_u64()
        .unwrap_or_else(|| panic!("no count in {entry} of {version:#}"))
}

impl TestApp {
    /// Uploads `bytes` at `relative_path` into `repository` through
    /// `content/<plugin>/<plural type>/` (e.g. `raw/raws`); waits for the task to complete.
    pub async fn upload_content(
        &self,
        content_path: &str,
        repository: &str,
        relative_path: &str,
        bytes: &[u8],
    ) {
        let (status, accepted) = self
            .post_multipart(
                &format!("{API}/content/{content_path}/"),
                &[
                    ("file", Some("upload.bin"), bytes),
                    ("relative_path", None, relative_path.as_bytes()),
                    ("repository", None, repository.as_bytes()),
                ],
            )
            .await;
        assert_eq!(status, StatusCode::ACCEPTED, "upload answered {accepted}");
        let task = self.wait_task(str_field(&accepted, "task")).await;
        assert_eq!(task["state"], "completed", "{task:#}");
    }

    /// Publishes the latest version of `repository` through `publications/<plugin>/<type>/`
    /// (e.g. `raw/raw`), distributes it at `base_path`, and returns the distribution's base URL.
    pub async fn publish_and_distribute_as(
        &self,
        type_path: &str,
        repository: &str,
        base_path: &str,
    ) -> String {
        let task = self
            .run_task(
                &format!("{API}/publications/{type_path}/"),
                json!({"repository": repository}),
            )
            .await;
        let publication = created_resources(&task)
            .into_iter()
            .find(|href| href.contains("/publications/"))
            .unwrap_or_else(|| panic!("no publication: {task:#}"));
        let task = self
            .run_task(
                &format!("{API}/distributions/{type_path}/"),
                json!({"name": base_path, "base_path": base_path, "publication": publication}),
            )
            .await;
        let distribution = created_resources(&task)
            .into_iter()
            .find(|href| href.contains("/distributions/"))
            .unwrap_or_else(|| panic!("no distribution: {task:#}"));
        str_field(&self.get_json(&distribution).await, "base_url").to_owned()
    }

    /// POST a JSON body, expecting 201 Created; returns the created object.
    pub async fn create(&self, path: &str, body: Value) -> Value {
        let (status, created) = self.post_json(path, &body).await;
        assert_eq!(
            status,
            StatusCode::CREATED,
            "POST {path} {body} answered {created}"
        );
        created
    }

    /// POST a JSON body, expecting 202 Accepted and `{"task": href}`; returns the task href.
    pub async fn dispatch(&self, path: &str, body: Value) -> String {
        let (status, accepted) = self.post_json(path, &body).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "POST {path} {body} answered {accepted}"
        );
        str_field(&accepted, "task").to_owned()
    }

    /// PATCH an object, expecting 202 (Pulp updates repositories, remotes and distributions in a
    /// task); waits for the task to complete and returns the object as GET then shows it.
    pub async fn update(&self, href: &str, body: Value) -> Value {
        let (status, accepted) = self.patch_json(href, &body).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "PATCH {href} {body} answered {accepted}"
        );
        let task = self.wait_task(str_field(&accepted, "task")).await;
        assert_eq!(task["state"], "completed", "update of {href}: {task:#}");
        self.get_json(href).await
    }

    /// DELETE an object, expecting 202 and a task that completes.
    pub async fn remove(&self, href: &str) {
        let (status, accepted) = self.delete_json(href).await;
        assert_eq!(
            status,
            StatusCode::ACCEPTED,
            "DELETE {href} answered {accepted}"
        );
        let task = self.wait_task(str_field(&accepted, "task")).await;
        assert_eq!(task["state"], "completed", "delete of {href}: {task:#}");
    }

    /// Dispatches a task and waits for it, expecting it to complete; returns the task.
    pub async fn run_task(&self, path: &str, body: Value) -> Value {
        let task_href = self.dispatch(path, body).await;
        let task = self.wait_task(&task_href).await;
        assert_eq!(
            task["state"], "completed",
            "task for POST {path} did not complete: {task:#}"
        );
        task
    }

    pub async fn create_file_remote(&self, name: &str, url: &str, policy: &str) -> String {
        let remote = self
            .create(
                &format!("{API}/remotes/file/file/"),
                json!({"name": name, "url": url, "policy": policy}),
            )
            .await;
        assert_eq!(
            remote["policy"], policy,
            "the remote keeps its policy: {remote:#}"
        );
        str_field(&remote, "pulp_href").to_owned()
    }

    /// Creates a python repository; returns its href.
    pub async fn create_python_repository(&self, name: &str) -> String {
        let repository = self
            .create(
                &format!("{API}/repositories/python/python/"),
                json!({"name": name}),
            )
            .await;
        str_field(&repository, "pulp_href").to_owned()
    }

    /// Creates a repository of `kind` (`npm/npm`: the REST path segments) and a distribution of
    /// it at `base_path`, with the distribution fields of `extra` (an object: a `remote`);
    /// answers the repository's href.
    pub async fn repository_and_distribution(
        &self,
        kind: &str,
        base_path: &str,
        extra: Value,
    ) -> String {
        let repository = self
            .create(
                &format!("{API}/repositories/{kind}/"),
                json!({"name": base_path}),
            )
            .await;
        let repository = str_field(&repository, "pulp_href").to_owned();
        let mut distribution =
            json!({"name": base_path, "base_path": base_path, "repository": repository});
        for (field, value) in extra.as_object().expect("distribution fields") {
            distribution[field] = value.clone();
        }
        let task = self
            .run_task(&format!("{API}/distributions/{kind}/"), distribution)
            .await;
        assert_eq!(created_resources(&task).len(), 1, "{task:#}");
        repository
    }

    /// Creates a file repository and checks it starts at version 0; returns its href.
    pub async fn create_file_repository(&self, name: &str) -> String {
        let repository = self
            .create(
                &format!("{API}/repositories/file/file/"),
                json!({"name": name}),
            )
            .await;
        let href = str_field(&repository, "pulp_href").to_owned();
        assert_eq!(
            repository["latest_version_href"],
            format!("{href}versions/0/"),
            "a new repository is at version 0: {repository:#}"
        );
        href
    }

    pub async fn latest_version_href(&self, repository_href: &str) -> String {
        let repository = self.get_json(repository_href).await;
        str_field(&repository, "latest_version_href").to_owned()
    }

    /// Runs orphan cleanup with `orphan_protection_time` minutes and expects it to complete.
    pub async fn clean_up_orphans(&self, protection_minutes: u64) {
        let task = self
            .run_task(
                &format!("{API}/orphans/cleanup/"),
                json!({"orphan_protection_time": protection_minutes}),
            )
            .await;
        assert_eq!(task["state"], "completed", "{task:#}");
    }

    /// Where the local storage keeps the bytes of the artifact `sha256`.
    pub fn stored_artifact(&self, sha256: &str) -> std::path::PathBuf {
        self.data_dir()
            .join("artifacts")
            .join(&sha256[0..2])
            .join(sha256)
    }

    /// Syncs and waits; returns the finished task whatever its state.
    pub async fn sync(&self, repository_href: &str, remote_href: &str, mirror: bool) -> Value {
        let task_href = self
            .dispatch(
                &format!("{repository_href}sync/"),
                json!({"remote": remote_href, "mirror": mirror}),
            )
            .await;
        self.wait_task(&task_href).await
    }

    /// Publishes the latest version of a file repository; returns the publication href.
    pub async fn publish_file(&self, repository_href: &str) -> String {
        let task = self
            .run_task(
                &format!("{API}/publications/file/file/"),
                json!({"repository": repository_href}),
            )
            .await;
        created_resources(&task)
            .into_iter()
            .find(|href| href.starts_with(&format!("{API}/publications/file/file/")))
            .unwrap_or_else(|| panic!("the publish task created no publication: {task:#}"))
    }

    /// Creates a file distribution from `target` (`{"publication": href}` or
    /// `{"repository": href}`) and returns the distribution as GET shows it.
    pub async fn distribute_file(&self, name: &str, base_path: &str, target: Value) -> Value {
        let mut body = json!({"name": name, "base_path": base_path});
        body.as_object_mut()
            .unwrap()
            .extend(target.as_object().expect("target is an object").clone());
        let task = self
            .run_task(&format!("{API}/distributions/file/file/"), body)
            .await;
        let href = created_resources(&task)
            .into_iter()
            .find(|href| href.starts_with(&format!("{API}/distributions/file/file/")))
            .unwrap_or_else(|| panic!("the distribute task created no distribution: {task:#}"));
        let distribution = self.get_json(&href).await;
        assert_eq!(distribution["base_path"], base_path, "{distribution:#}");
        assert_eq!(
            distribution["base_url"],
            self.url(&format!("/pulp/content/{base_path}/")),
            "base_url is the content app's URL for the base path: {distribution:#}"
        );
        distribution
    }

    /// Publishes and distributes the latest version of `repository_href` under `base_path`;
    /// returns the distribution's `base_url`.
    pub async fn publish_and_distribute(&self, repository_href: &str, base_path: &str) -> String {
        let publication = self.publish_file(repository_href).await;
        let distribution = self
            .distribute_file(base_path, base_path, json!({"publication": publication}))
            .await;
        assert_eq!(distribution["publication"], publication, "{distribution:#}");
        str_field(&distribution, "base_url").to_owned()
    }

    /// Asks anonymously for `url`, which must not answer `secret` (another repository's bytes):
    /// neither a 200 nor those bytes.
    pub async fn assert_not_served(&self, url: &str, secret: &[u8]) {
        let answer = self.anonymous().get(url).send().await.unwrap();
        let status = answer.status();
        let body = answer.bytes().await.unwrap();
        assert_ne!(status, StatusCode::OK, "{url}");
        assert!(
            body != secret,
            "{url} answered the other repository's bytes"
        );
    }

    /// Every item of a paginated list, following `next`.
    pub async fn list_all(&self, path: &str) -> Vec<Value> {
        let mut items = Vec::new();
        let mut next = Some(path.to_owned());
        while let Some(page_path) = next {
            let page = self.get_json(&page_path).await;
            items.extend(
                page["results"]
                    .as_array()
                    .unwrap_or_else(|| panic!("GET {page_path} is not a page: {page:#}"))
                    .iter()
                    .cloned(),
            );
            next = page["next"].as_str().map(str::to_owned);
        }
        items
    }

    /// The `count` of a paginated list.
    pub async fn count(&self, path: &str) -> u64 {
        let page = self.get_json(path).await;
        page["count"]
            .as_u64()
            .unwrap_or_else(|| panic!("GET {path} has no count: {page:#}"))
    }

    /// The file content units in a repository version.
    pub async fn file_content_in(&self, version_href: &str) -> Vec<Value> {
        self.list_all(&format!(
            "{API}/content/file/files/?repository_version={version_href}&limit=1000"
        ))
        .await
    }

    /// How many artifacts have this sha256.
    pub async fn artifacts_with_sha256(&self, sha256: &str) -> u64 {
        self.count(&format!("{API}/artifacts/?sha256={sha256}"))
            .await
    }

    /// `GET /pulp/api/v3/status/` answers 200.
    pub async fn assert_status_ok(&self) {
        let (status, body) = self.get(&format!("{API}/status/")).await;
        assert_eq!(
            status,
            StatusCode::OK,
            "the status endpoint answered {body}"
        );
    }
}
