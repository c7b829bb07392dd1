//! Statements of a write transaction sent together.
//!
//! A SQLite connection is a thread of its own (sqlx): every statement is a trip there and back,
//! two thread hand-offs that cost more than the statement itself (an upload's statements took
//! 10–70 µs each, with 40–100 µs between them). SQLite runs several statements given as one
//! query, so a [`Batch`] is one trip however many statements it holds; measured here, 20 inserts
//! took 1.0 ms one by one and 0.17 ms as one batch. PostgreSQL's protocol takes one statement with
//! parameters at a time: there the statements run in turn, as they would one by one.

use futures::TryStreamExt as _;
use futures::stream::BoxStream;
use sqlx::Either;
use sqlx::Executor as _;
#[cfg(test)]
use sqlx::Row as _;
use sqlx::any::{AnyQueryResult, AnyRow};

use super::{Backend, WriteTx};

/// A value bound to a statement of a [`Batch`]. Typed even when null: PostgreSQL refuses a text
/// null for an integer column.
#[derive(Debug)]
pub enum SqlValue {
    /// Text, or a null of text.
    Text(Option<String>),
    /// An integer, or a null of integer.
    Integer(Option<i64>),
}

impl From<&str> for SqlValue {
    fn from(value: &str) -> Self {
        SqlValue::Text(Some(value.to_owned()))
    }
}

impl From<String> for SqlValue {
    fn from(value: String) -> Self {
        SqlValue::Text(Some(value))
    }
}

impl From<&String> for SqlValue {
    fn from(value: &String) -> Self {
        SqlValue::Text(Some(value.clone()))
    }
}

impl From<Option<&str>> for SqlValue {
    fn from(value: Option<&str>) -> Self {
        SqlValue::Text(value.map(str::to_owned))
    }
}

impl From<Option<String>> for SqlValue {
    fn from(value: Option<String>) -> Self {
        SqlValue::Text(value)
    }
}

impl From<i64> for SqlValue {
    fn from(value: i64) -> Self {
        SqlValue::Integer(Some(value))
    }
}

impl From<Option<i64>> for SqlValue {
    fn from(value: Option<i64>) -> Self {
        SqlValue::Integer(value)
    }
}

/// Statements to run in order in one transaction, each with its own `$1, $2…` placeholders.
/// Their `$` may only mark placeholders (no `$` in a literal), and none ends in `;`.
#[derive(Debug, Default)]
pub struct Batch {
    statements: Vec<(String, Vec<SqlValue>)>,
}

impl Batch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a statement and the values of its placeholders.
    pub fn push(&mut self, sql: impl Into<String>, values: Vec<SqlValue>) -> &mut Self {
        self.statements.push((sql.into(), values));
        self
    }

    /// Adds the statements of `other` after its own.
    pub fn append(&mut self, other: Batch) -> &mut Self {
        self.statements.extend(other.statements);
        self
    }

    /// How many statements it holds.
    pub fn len(&self) -> usize {
        self.statements.len()
    }

    /// Whether it holds no statement.
    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }

    /// Runs the statements in `tx`; answers the rows they return, in order.
    pub async fn run(self, tx: &mut WriteTx) -> Result<Vec<AnyRow>, sqlx::Error> {
        let ran = self.run_each(tx).await?;
        Ok(ran
            .into_iter()
            .flat_map(|statement| statement.rows)
            .collect())
    }

    /// Runs the statements in `tx`; answers what each one did, in order, so that statements of
    /// different shapes (a count and a row, two reads) can share a trip.
    pub async fn run_each(self, tx: &mut WriteTx) -> Result<Vec<Ran>, sqlx::Error> {
        if self.is_empty() {
            return Ok(Vec::new());
        }
        let mut ran = Vec::with_capacity(self.len());
        match tx.backend {
            Backend::Sqlite => {
                // SQLite ends each statement of the query with its result, after its rows.
                let (sql, values) = self.joined();
                collect_each(
                    &mut ran,
                    (&mut **tx).fetch_many(bind(sqlx::query(&sql), values)),
                )
                .await?;
            }
            Backend::Postgres => {
                for (sql, values) in self.statements {
                    collect_each(
                        &mut ran,
                        (&mut **tx).fetch_many(bind(sqlx::query(&sql), values)),
                    )
                    .await?;
                }
            }
        }
        Ok(ran)
    }

    /// SQLite's plan for each statement (`EXPLAIN QUERY PLAN`, one detail line per step), for
    /// tests that show what a statement walks.
    #[cfg(test)]
    pub(crate) async fn plans(self, tx: &mut WriteTx) -> Result<Vec<Vec<String>>, sqlx::Error> {
        let mut plans = Vec::new();
        for (sql, values) in self.statements {
            let explain = format!("EXPLAIN QUERY PLAN {sql}");
            let steps = bind(sqlx::query(&explain), values)
                .fetch_all(&mut **tx)
                .await?;
            plans.push(
                steps
                    .iter()
                    .map(|step| step.try_get::<String, _>(3))
                    .collect::<Result<_, _>>()?,
            );
        }
        Ok(plans)
    }

    /// The statements as one query: each one's placeholders renumbered after the values of the
    /// statements before it, so that `$n` stays the statement's own n-th value.
    fn joined(self) -> (String, Vec<SqlValue>) {
        let mut sql = String::new();
        let mut all = Vec::new();
        for (statement, values) in self.statements {
            if !sql.is_empty() {
                sql.push_str(";\n");
            }
            sql.push_str(&shift_placeholders(&statement, all.len()));
            all.extend(values);
        }
        (sql, all)
    }
}

/// `sql` with every `$n` made `$(n + by)`.
fn shift_placeholders(sql: &str, by: usize) -> String {
    let mut shifted = String::with_capacity(sql.len() + 8);
    let mut rest = sql;
    while let Some(at) = rest.find('$') {
        shifted.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        match rest[..digits].parse::<usize>() {
            Ok(number) => shifted.push_str(&(number + by).to_string()),
            Err(_) => shifted.push_str(&rest[..digits]),
        }
        rest = &rest[digits..];
    }
    shifted.push_str(rest);
    shifted
}

/// What one statement of a [`Batch`] did.
#[derive(Default)]
pub struct Ran {
    /// The rows it wrote, updated or deleted, for a statement that writes. (Of a read, SQLite
    /// reports the count of the last write before it, PostgreSQL the rows it returned.)
    pub rows_affected: u64,
    /// The rows it returned.
    pub rows: Vec<AnyRow>,
}

/// Adds to `ran` a [`Ran`] per statement of `steps`.
async fn collect_each(
    ran: &mut Vec<Ran>,
    mut steps: BoxStream<'_, Result<Either<AnyQueryResult, AnyRow>, sqlx::Error>>,
) -> Result<(), sqlx::Error> {
    let mut rows = Vec::new();
    while let Some(step) = steps.try_next().await? {
        match step {
            Either::Right(row) => rows.push(row),
            Either::Left(done) => ran.push(Ran {
                rows_affected: done.rows_affected(),
                rows: std::mem::take(&mut rows),
            }),
        }
    }
    Ok(())
}

/// `query` with `values` bound in order.
fn bind<'q>(
    mut query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    values: Vec<SqlValue>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    for value in values {
        query = match value {
            SqlValue::Text(text) => query.bind(text),
            SqlValue::Integer(integer) => query.bind(integer),
        };
    }
    query
}

#[cfg(test)]
mod tests {
    use sqlx::{Executor as _, Row as _};

    use super::{Batch, SqlValue, shift_placeholders};
    use crate::db::{Db, WriteTx};

    #[test]
    fn placeholders_are_renumbered_after_the_values_before_them() {
        assert_eq!(
            shift_placeholders("UPDATE t SET a = $2 WHERE id = $1 AND b = $10", 3),
            "UPDATE t SET a = $5 WHERE id = $4 AND b = $13"
        );
        assert_eq!(shift_placeholders("SELECT 1", 7), "SELECT 1");
    }

    /// A scratch database with an empty table `notes (id, body)`, and a write transaction.
    async fn notes() -> (tempfile::TempDir, Db, WriteTx) {
        let (dir, db) = crate::db::tests::scratch_db().await;
        db.pool()
            .execute("CREATE TABLE notes (id INTEGER, body TEXT)")
            .await
            .expect("a table");
        let tx = db.begin_write().await.expect("a write transaction");
        (dir, db, tx)
    }

    #[tokio::test]
    async fn a_batch_runs_its_statements_in_order_and_answers_their_rows() {
        let (_dir, db, mut tx) = notes().await;
        let mut batch = Batch::new();
        batch
            .push(
                "INSERT INTO notes (id, body) VALUES ($1, $2)",
                vec![1_i64.into(), "first".into()],
            )
            .push(
                "INSERT INTO notes (id, body) VALUES ($1, $2)",
                vec![2_i64.into(), SqlValue::Text(None)],
            )
            .push(
                "UPDATE notes SET body = $2 WHERE id = $1",
                vec![2_i64.into(), "second".into()],
            )
            .push(
                "SELECT body FROM notes WHERE id >= $1 ORDER BY id",
                vec![1_i64.into()],
            );
        let rows = batch.run(&mut tx).await.expect("the batch runs");
        let bodies: Vec<Option<String>> = rows
            .iter()
            .map(|row| row.try_get(0).expect("text"))
            .collect();
        assert_eq!(
            bodies,
            [Some("first".to_owned()), Some("second".to_owned())],
            "each statement sees the ones before it, and binds its own values"
        );
        drop(tx);
        let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM notes")
            .fetch_one(db.pool())
            .await
            .expect("counting");
        assert_eq!(
            left, 0,
            "a batch is part of its transaction: rolled back with it"
        );
    }

    #[tokio::test]
    async fn each_statement_of_a_batch_answers_what_it_did() {
        let (_dir, _db, mut tx) = notes().await;
        let mut batch = Batch::new();
        batch
            .push(
                "INSERT INTO notes (id, body) VALUES ($1, 'a'), ($2, 'b'), ($3, 'c')",
                vec![1_i64.into(), 2_i64.into(), 3_i64.into()],
            )
            .push("SELECT COUNT(*) FROM notes", Vec::new())
            .push("DELETE FROM notes WHERE id > $1", vec![1_i64.into()])
            .push("SELECT id, body FROM notes", Vec::new());
        let ran = batch.run_each(&mut tx).await.expect("the batch runs");
        assert_eq!(ran.len(), 4, "a result for each statement");
        assert_eq!(
            (ran[0].rows_affected, ran[2].rows_affected),
            (3, 2),
            "each write's own count"
        );
        let rows: Vec<usize> = ran.iter().map(|statement| statement.rows.len()).collect();
        assert_eq!(rows, [0, 1, 0, 1], "each statement's own rows");
        let count: i64 = ran[1].rows[0].try_get(0).expect("a count");
        assert_eq!(count, 3, "the count saw the insert before it");
        let body: String = ran[3].rows[0].try_get(1).expect("a body");
        assert_eq!(body, "a", "the last read saw the delete before it");
    }
}
