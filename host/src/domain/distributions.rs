//! Distributions: creating one (the work of its create task), and the rule that no two base
//! paths overlap.

use serde::{Deserialize, Serialize};

use super::hrefs::{self, RestNames};
use crate::db::{Db, new_id, now};
use crate::plugins::rest_names::Collection;

/// Longest base path, in bytes. The content app tries only prefixes this long, so what a request
/// path costs to resolve does not grow with its length.
pub const MAX_BASE_PATH_BYTES: usize = 255;

/// Most segments of a base path: the content app tries at most this many prefixes of a path.
pub const MAX_BASE_PATH_SEGMENTS: usize = 16;

/// Why `base_path` (trimmed of slashes) is longer or deeper than a base path may be, if it is.
pub fn base_path_too_long(base_path: &str) -> Option<String> {
    if base_path.len() > MAX_BASE_PATH_BYTES {
        return Some(format!(
            "Ensure this field has no more than {MAX_BASE_PATH_BYTES} characters."
        ));
    }
    if base_path.split('/').count() > MAX_BASE_PATH_SEGMENTS {
        return Some(format!(
            "Ensure this path has no more than {MAX_BASE_PATH_SEGMENTS} segments."
        ));
    }
    None
}

/// The validated fields of a new distribution (the arguments of its create task).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DistributionFields {
    /// Owning plugin.
    pub plugin: String,
    /// Its repository type.
    pub type_name: String,
    /// Unique name.
    pub name: String,
    /// Unique path under `/pulp/content/`.
    pub base_path: String,
    /// Serve this publication.
    pub publication_id: Option<String>,
    /// Or serve the newest publication of this repository.
    pub repository_id: Option<String>,
    /// Or serve this repository version.
    #[serde(default)]
    pub repository_version_id: Option<String>,
    /// Pull-through remote.
    #[serde(default)]
    pub remote_id: Option<String>,
    /// The content guard protecting it (`content_guards.id`).
    #[serde(default)]
    pub content_guard: Option<String>,
    /// Hidden from the content app's root listing.
    pub hidden: bool,
    /// Readable only by users who may view its repository (absent from tasks queued before
    /// the field existed).
    #[serde(default)]
    pub private: bool,
    /// `pulp_labels` as JSON.
    pub labels: String,
    /// The plugin-declared fields, as a JSON object.
    #[serde(default = "empty_object")]
    pub extra: String,
}

fn empty_object() -> String {
    "{}".into()
}

/// How a base path collides with another distribution's.
#[derive(Debug, PartialEq, Eq)]
pub enum Overlap {
    /// Another distribution has the same base path.
    Same,
    /// One base path nests inside the other.
    Nested {
        /// The other distribution's name.
        name: String,
        /// Its base path.
        base_path: String,
    },
}

/// The first distribution other than `except` whose base path is `base_path`, nests inside it,
/// or contains it (Pulp forbids overlapping base paths: the content app could not tell which one
/// a path belongs to).
pub async fn overlap(
    db: &Db,
    base_path: &str,
    except: Option<&str>,
) -> Result<Option<Overlap>, sqlx::Error> {
    let rows = sqlx::query_as::<_, (String, String, String)>(
        "SELECT id, base_path, name FROM distributions",
    )
    .fetch_all(db.pool())
    .await?;
    for (id, other, name) in rows {
        if Some(id.as_str()) == except {
            continue;
        }
        if other == base_path {
            return Ok(Some(Overlap::Same));
        }
        if base_path.starts_with(&format!("{other}/"))
            || other.starts_with(&format!("{base_path}/"))
        {
            return Ok(Some(Overlap::Nested {
                name,
                base_path: other,
            }));
        }
    }
    Ok(None)
}

/// Creates a distribution (the work of its create task); returns its href.
pub async fn create(
    db: &Db,
    names: &RestNames,
    fields: DistributionFields,
) -> anyhow::Result<String> {
    anyhow::ensure!(
        overlap(db, &fields.base_path, None).await?.is_none(),
        "base path {:?} is taken or overlaps another distribution",
        fields.base_path
    );
    let id = new_id();
    let mut tx = db.begin_write().await?;
    sqlx::query(
        "INSERT INTO distributions (id, plugin, type_name, name, base_path, publication_id, repository_id,
             repository_version_id, remote_id, hidden, labels, created, updated, extra, content_guard,
             private)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, $13, $14, $15)",
    )
    .bind(&id)
    .bind(&fields.plugin)
    .bind(&fields.type_name)
    .bind(&fields.name)
    .bind(&fields.base_path)
    .bind(&fields.publication_id)
    .bind(&fields.repository_id)
    .bind(&fields.repository_version_id)
    .bind(&fields.remote_id)
    .bind(i64::from(fields.hidden))
    .bind(&fields.labels)
    .bind(now())
    .bind(&fields.extra)
    .bind(&fields.content_guard)
    .bind(i64::from(fields.private))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(hrefs::distribution(
        names,
        &fields.plugin,
        &fields.type_name,
        &id,
    ))
}

/// Creates, for a push to a name that has no distribution (pulp_container's push repositories),
/// a repository of `plugin` (of its push repository type, if it names one) named `base_path` and a distribution of its latest version at
/// `base_path`, and gives `creator` (a `users.id`) the roles the creation hooks of their access
/// policies name (their owner roles), as if they had created both through the REST API.
pub async fn create_for_push(
    db: &Db,
    names: &RestNames,
    plugin: &str,
    base_path: &str,
    creator: &str,
) -> anyhow::Result<()> {
    if let Some(problem) = base_path_too_long(base_path) {
        anyhow::bail!("{problem}");
    }
    let plugin_names = names
        .plugin(plugin)
        .ok_or_else(|| anyhow::anyhow!("the plugin {plugin:?} has no REST names"))?;
    let typed = |collection: Collection| {
        // The plugin's push repository type when it names one (`container-push`).
        let segment = match plugin_names.push_type() {
            Some(push) if collection == Collection::Repositories => push.to_owned(),
            _ => plugin_names.segment(collection).to_owned(),
        };
        let type_name = names
            .type_of(plugin, collection, &segment)
            .unwrap_or_else(|| segment.clone());
        (segment, type_name)
    };
    let (repository_segment, repository_type) = typed(Collection::Repositories);
    let (distribution_segment, distribution_type) = typed(Collection::Distributions);
    let repository_id =
        super::objects::create_repository(db, (plugin, &repository_type), base_path, None, "{}")
            .await?;
    let repository_href = hrefs::repository(names, plugin, &repository_type, &repository_id);
    let fields = DistributionFields {
        plugin: plugin.to_owned(),
        type_name: distribution_type,
        name: base_path.to_owned(),
        base_path: base_path.to_owned(),
        publication_id: None,
        repository_id: Some(repository_id.clone()),
        repository_version_id: None,
        remote_id: None,
        content_guard: None,
        hidden: false,
        private: false,
        labels: "{}".to_owned(),
        extra: empty_object(),
    };
    let distribution_href = create(db, names, fields).await?;
    let distribution_id = distribution_href
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    for (collection, segment, id, href) in [
        (
            Collection::Repositories,
            repository_segment,
            &repository_id,
            &repository_href,
        ),
        (
            Collection::Distributions,
            distribution_segment,
            &distribution_id,
            &distribution_href,
        ),
    ] {
        let viewset = format!("{}/{plugin}/{segment}", collection.path());
        let Some(policy) = crate::rbac::policy(db, &viewset).await? else {
            continue;
        };
        let hooks: serde_json::Value =
            serde_json::from_str(&policy.creation_hooks).unwrap_or_default();
        let object = crate::rbac::Object { id, href };
        crate::rbac::run_creation_hooks(db, &hooks, creator, object).await?;
    }
    Ok(())
}
