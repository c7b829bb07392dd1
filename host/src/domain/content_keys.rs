//! Indexed fields of content units (WIT 0.3.0 `content-type-info.indexed-fields`): for each field
//! a content type declares, the unit's value there, kept in `content_keys` so that a plugin can
//! list a field's distinct values in a version and find units by value
//! (`content.distinct-values`, `content.find-by-field`) without listing the version.
//!
//! A value is the field of the unit's metadata, or else of its natural key, when it is a JSON
//! string of at most [`MAX_INDEXED_VALUE_BYTES`](crate::plugins::MAX_INDEXED_VALUE_BYTES); other
//! values are not indexed. The field a content type names as its `repository-key` is flagged in
//! `content_key_fields`, for the versions' replacement of units with the same key
//! (`versions::finish_version`).
//! Keys are written with the unit, in the same transaction, for every field recorded in
//! `content_key_fields`; a field a plugin declares for the first time is recorded when the plugin
//! is loaded, and the units stored before are indexed then ([`declare`]).

use std::collections::BTreeMap;

use serde_json::Value;

use sqlx::Row as _;
use sqlx::any::AnyRow;

use crate::db::{Batch, Db, SqlValue, WriteTx, value_rows};
use crate::plugins::{MAX_INDEXED_VALUE_BYTES, PluginInfo};

/// Rows per multi-row INSERT (five values each).
const INSERT_CHUNK: usize = 100;
/// Units read per transaction while a new field is backfilled.
const BACKFILL_PAGE: i64 = 1000;

/// A unit to index: its id, content type, natural key and metadata JSON.
pub struct Unit<'a> {
    /// The unit's id.
    pub content_id: &'a str,
    /// Its content type.
    pub type_name: &'a str,
    /// Its natural key JSON.
    pub natural_key: &'a str,
    /// Its metadata JSON.
    pub metadata: &'a str,
}

/// The (field, value) keys of a unit under `fields`: each field's value in `metadata`, or else in
/// `natural_key`.
fn keys_of<'f>(fields: &'f [String], natural_key: &str, metadata: &str) -> Vec<(&'f str, String)> {
    if fields.is_empty() {
        return Vec::new();
    }
    let object = |json: &str| match serde_json::from_str::<Value>(json) {
        Ok(Value::Object(object)) => object,
        _ => serde_json::Map::new(),
    };
    let (metadata, natural_key) = (object(metadata), object(natural_key));
    fields
        .iter()
        .filter_map(
            |field| match metadata.get(field).or_else(|| natural_key.get(field)) {
                Some(Value::String(value)) if value.len() <= MAX_INDEXED_VALUE_BYTES => {
                    Some((field.as_str(), value.clone()))
                }
                _ => None,
            },
        )
        .collect()
}

/// The fields recorded for a plugin's content types, by type.
pub type Recorded = BTreeMap<String, Vec<String>>;

/// Adds to `batch` the read of the fields recorded for `plugin` ([`recorded_from`] its rows).
pub fn read_recorded(batch: &mut Batch, plugin: &str) {
    batch.push(
        "SELECT type_name, field FROM content_key_fields WHERE plugin = $1 ORDER BY type_name, field",
        vec![plugin.into()],
    );
}

/// The fields of the rows of [`read_recorded`].
pub fn recorded_from(rows: &[AnyRow]) -> Result<Recorded, sqlx::Error> {
    let mut fields = Recorded::new();
    for row in rows {
        let (type_name, field): (String, String) = (row.try_get(0)?, row.try_get(1)?);
        fields.entry(type_name).or_default().push(field);
    }
    Ok(fields)
}

/// Writes the keys of `units` of `plugin` under every field recorded for their types (keys that
/// exist already are left as they are): at most two trips to the database.
pub async fn index(tx: &mut WriteTx, plugin: &str, units: &[Unit<'_>]) -> Result<(), sqlx::Error> {
    if units.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    read_recorded(&mut batch, plugin);
    let fields = recorded_from(&batch.run(tx).await?)?;
    let mut batch = Batch::new();
    index_statements(&mut batch, plugin, &fields, units);
    batch.run(tx).await?;
    Ok(())
}

/// Adds to `batch` the statements that write the keys of `units` of `plugin` under `fields`
/// (keys that exist already are left as they are).
pub fn index_statements(batch: &mut Batch, plugin: &str, fields: &Recorded, units: &[Unit<'_>]) {
    let mut rows = Vec::new();
    for unit in units {
        let Some(fields) = fields.get(unit.type_name) else {
            continue;
        };
        for (field, value) in keys_of(fields, unit.natural_key, unit.metadata) {
            rows.push((unit.type_name, field, value, unit.content_id));
        }
    }
    for chunk in rows.chunks(INSERT_CHUNK) {
        let sql = format!(
            "INSERT INTO content_keys (plugin, type_name, field, value, content_id) VALUES {}
             ON CONFLICT DO NOTHING",
            value_rows("($1, ?, ?, ?, ?)", 2, chunk.len())
        );
        let mut values = Vec::with_capacity(1 + 4 * chunk.len());
        values.push(plugin.into());
        for (type_name, field, value, content_id) in chunk {
            values.extend([
                SqlValue::from(*type_name),
                SqlValue::from(*field),
                SqlValue::from(value.as_str()),
                SqlValue::from(*content_id),
            ]);
        }
        batch.push(sql, values);
    }
}

/// Rewrites the keys of one unit whose metadata changed.
pub async fn reindex(tx: &mut WriteTx, plugin: &str, unit: &Unit<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM content_keys WHERE content_id = $1")
        .bind(unit.content_id)
        .execute(&mut **tx)
        .await?;
    index(tx, plugin, std::slice::from_ref(unit)).await
}

/// Records the fields `info` declares and indexes, under each field not indexed completely yet,
/// the units stored before it (a page per transaction, so writers are not held up). Called
/// whenever a plugin is loaded; cheap when nothing is new.
pub async fn declare(db: &Db, info: &PluginInfo) -> anyhow::Result<()> {
    let declared: Vec<(&str, &str)> = info
        .content_types
        .iter()
        .flat_map(|t| {
            t.indexed_fields
                .iter()
                .map(|f| (t.name.as_str(), f.as_str()))
        })
        .collect();
    let keyed = |type_name: &str, field: &str| {
        info.content_types
            .iter()
            .any(|t| t.name == type_name && t.repository_key.as_deref() == Some(field))
    };
    let recorded = sqlx::query_as::<_, (String, String, i64)>(
        "SELECT type_name, field, repository_key FROM content_key_fields WHERE plugin = $1",
    )
    .bind(&info.name)
    .fetch_all(db.pool())
    .await?;
    let unchanged = declared
        .iter()
        .all(|(t, f)| recorded.iter().any(|(rt, rf, _)| rt == t && rf == f))
        && recorded
            .iter()
            .all(|(t, f, key)| (*key == 1) == keyed(t, f));
    if !unchanged {
        let mut tx = db.begin_write().await?;
        for (type_name, field) in &declared {
            sqlx::query(
                "INSERT INTO content_key_fields (plugin, type_name, field, complete) VALUES ($1, $2, $3, 0)
                 ON CONFLICT DO NOTHING",
            )
            .bind(&info.name)
            .bind(*type_name)
            .bind(*field)
            .execute(&mut *tx)
            .await?;
        }
        // The repository key is what the plugin now loaded says, for every recorded field.
        sqlx::query("UPDATE content_key_fields SET repository_key = 0 WHERE plugin = $1")
            .bind(&info.name)
            .execute(&mut *tx)
            .await?;
        for content_type in &info.content_types {
            if let Some(key) = &content_type.repository_key {
                sqlx::query(
                    "UPDATE content_key_fields SET repository_key = 1
                     WHERE plugin = $1 AND type_name = $2 AND field = $3",
                )
                .bind(&info.name)
                .bind(&content_type.name)
                .bind(key)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
    }
    let incomplete = sqlx::query_as::<_, (String, String)>(
        "SELECT type_name, field FROM content_key_fields WHERE plugin = $1 AND complete = 0",
    )
    .bind(&info.name)
    .fetch_all(db.pool())
    .await?;
    for (type_name, field) in incomplete {
        let indexed = backfill(db, &info.name, &type_name, &field).await?;
        tracing::info!(plugin = %info.name, content_type = %type_name, %field, units = indexed, "indexed the stored units by a newly declared field");
    }
    Ok(())
}

/// Indexes every stored unit of `plugin`'s `type_name` by `field`, then marks the field complete.
/// Returns how many units were read.
async fn backfill(db: &Db, plugin: &str, type_name: &str, field: &str) -> anyhow::Result<u64> {
    let fields = Recorded::from([(type_name.to_owned(), vec![field.to_owned()])]);
    let mut cursor = String::new();
    let mut read = 0;
    loop {
        let mut tx = db.begin_write().await?;
        let page = sqlx::query_as::<_, (String, String, String)>(
            "SELECT id, natural_key, metadata FROM content WHERE plugin = $1 AND type_name = $2 AND id > $3
             ORDER BY id LIMIT $4",
        )
        .bind(plugin)
        .bind(type_name)
        .bind(&cursor)
        .bind(BACKFILL_PAGE)
        .fetch_all(&mut *tx)
        .await?;
        let units: Vec<Unit<'_>> = page
            .iter()
            .map(|(id, natural_key, metadata)| Unit {
                content_id: id,
                type_name,
                natural_key,
                metadata,
            })
            .collect();
        let mut batch = Batch::new();
        index_statements(&mut batch, plugin, &fields, &units);
        batch.run(&mut tx).await?;
        let last = page.last().map(|(id, _, _)| id.clone());
        read += page.len() as u64;
        if last.is_none() {
            sqlx::query(
                "UPDATE content_key_fields SET complete = 1 WHERE plugin = $1 AND type_name = $2 AND field = $3",
            )
            .bind(plugin)
            .bind(type_name)
            .bind(field)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        match last {
            Some(last) => cursor = last,
            None => return Ok(read),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::keys_of;

    #[test]
    fn only_short_strings_are_keys() {
        let fields = ["name", "size", "tags", "missing", "long"].map(String::from);
        let long = "x".repeat(513);
        let metadata = serde_json::json!({
            "name": "Foo_Bar", "size": 3, "tags": ["a"], "long": long,
        })
        .to_string();
        assert_eq!(
            keys_of(&fields, "{}", &metadata),
            [("name", "Foo_Bar".to_owned())]
        );
        assert!(keys_of(&fields, "{}", "not json").is_empty());
        assert!(keys_of(&[], "{}", &metadata).is_empty());
    }

    #[test]
    fn metadata_comes_first_then_the_natural_key() {
        let fields = ["relative_path", "name"].map(String::from);
        let natural_key = r#"{"relative_path":"a/b.txt","name":"from the key"}"#;
        assert_eq!(
            keys_of(&fields, natural_key, r#"{"name":"from the metadata"}"#),
            [
                ("relative_path", "a/b.txt".to_owned()),
                ("name", "from the metadata".to_owned())
            ]
        );
    }
}
