//! The one list machinery every REST list and show goes through: Pulp's filter grammar, ordering,
//! `limit`/`offset` pagination, `fields`/`exclude_fields`, and the caller's visibility.
//!
//! A resource describes its table once in a [`ListSpec`]: the columns it selects (read back by
//! name into its row type), the fields a client may filter on with their [`Kind`], the `ordering`
//! names it accepts; `resource!` declares the row type and its spec from one list of fields. The
//! lookups each kind takes are Pulp's (django-filter's):
//!
//! | kind | lookups |
//! |---|---|
//! | [`Kind::Text`] | exact, `__iexact`, `__contains` (case-sensitive), `__icontains`, `__startswith`, `__istartswith`, `__in` |
//! | [`Kind::Int`] | exact, `__gt`, `__gte`, `__lt`, `__lte`, `__in` |
//! | [`Kind::Time`] | exact, `__gt`, `__gte`, `__lt`, `__lte` (any RFC 3339 or ISO date/time; no zone is UTC) |
//! | [`Kind::Bool`] | exact (`true`/`false`, `True`/`False`, `1`/`0`) |
//!
//! plus `pulp_href__in`, `prn__in` and, on resources with labels, `pulp_label_select`. As in
//! django-filter, an empty value filters nothing and an unknown parameter is ignored.
//!
//! Every condition is written once in the SQL both engines run alike: `LIKE` is case-insensitive
//! on SQLite and case-sensitive on PostgreSQL, so the case-sensitive lookups compare with
//! `REPLACE`/`SUBSTR` and the case-insensitive ones lower both sides. (`LOWER` folds ASCII only on
//! SQLite, all of Unicode on PostgreSQL: `__icontains` of non-ASCII letters may differ.)
//!
//! [`Visibility`] is the condition a caller's permissions put on every list and show: rows
//! outside it are neither counted nor shown, and a show of one answers 404.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequestParts, OriginalUri, Query};
use axum::http::Uri;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::Value;
use sqlx::any::AnyRow;

use super::list_expression::{self, Expression};
use crate::db::{Backend, Db};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::App;

/// Query parameters of a list request.
pub type ListQuery = std::collections::HashMap<String, String>;

/// A list request, as every list handler takes it: the query parameters (filters, `ordering`,
/// `limit`, `offset`, `fields`) and the URI whose query the page links carry on.
#[derive(Debug)]
pub struct ListRequest {
    /// The query parameters.
    pub query: ListQuery,
    /// The URI as the client sent it.
    pub uri: Uri,
}

impl<S: Send + Sync> FromRequestParts<S> for ListRequest {
    type Rejection = QueryRejection;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Query(query) = Query::from_request_parts(parts, state).await?;
        let Ok(OriginalUri(uri)) = OriginalUri::from_request_parts(parts, state).await;
        Ok(ListRequest { query, uri })
    }
}

/// What a filterable field holds, which decides the lookups it takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Text compared as is.
    Text,
    /// An integer.
    Int,
    /// A timestamp stored as fixed-width RFC 3339 UTC text.
    Time,
    /// A flag stored as 0 or 1.
    Bool,
}

impl Kind {
    /// The lookups a field of this kind takes (`exact` is the bare field name), as the module's
    /// table lists them; the API document offers each one.
    pub fn lookups(self) -> &'static [&'static str] {
        match self {
            Kind::Text => &[
                "exact",
                "iexact",
                "contains",
                "icontains",
                "startswith",
                "istartswith",
                "in",
            ],
            Kind::Int => &["exact", "gt", "gte", "lt", "lte", "in"],
            Kind::Time => &["exact", "gt", "gte", "lt", "lte"],
            Kind::Bool => &["exact"],
        }
    }
}

/// A list filter a resource reads itself rather than through its [`ListSpec`] (an href of
/// another object, say), declared next to where it is parsed so the API document lists it.
#[derive(Debug, Clone, Copy)]
pub struct ExtraFilter {
    /// The query parameter.
    pub name: &'static str,
    /// What it selects, for the document.
    pub description: &'static str,
    /// What value it takes.
    pub takes: Takes,
}

/// The value an [`ExtraFilter`] takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Takes {
    /// One text value.
    One,
    /// A comma-separated list.
    Many,
    /// A boolean (`true`/`false`; clients such as pulp-glue check the type).
    Flag,
}

impl ExtraFilter {
    const fn of(name: &'static str, description: &'static str, takes: Takes) -> ExtraFilter {
        ExtraFilter {
            name,
            description,
            takes,
        }
    }

    /// A filter taking one value.
    pub const fn one(name: &'static str, description: &'static str) -> ExtraFilter {
        ExtraFilter::of(name, description, Takes::One)
    }

    /// A filter taking a comma-separated list.
    pub const fn many(name: &'static str, description: &'static str) -> ExtraFilter {
        ExtraFilter::of(name, description, Takes::Many)
    }

    /// A filter taking a boolean.
    pub const fn flag(name: &'static str, description: &'static str) -> ExtraFilter {
        ExtraFilter::of(name, description, Takes::Flag)
    }
}

/// A field a client may filter on.
#[derive(Debug, Clone, Copy)]
pub struct Filter {
    /// The query parameter (`name`, `started_at`).
    pub name: &'static str,
    /// The SQL expression it compares (`r.name`, `started`).
    pub column: &'static str,
    /// What it holds.
    pub kind: Kind,
}

impl Filter {
    const fn of(name: &'static str, column: &'static str, kind: Kind) -> Filter {
        Filter { name, column, kind }
    }

    /// A text field.
    pub const fn text(name: &'static str, column: &'static str) -> Filter {
        Filter::of(name, column, Kind::Text)
    }

    /// An integer field.
    pub const fn int(name: &'static str, column: &'static str) -> Filter {
        Filter::of(name, column, Kind::Int)
    }

    /// A timestamp field.
    pub const fn time(name: &'static str, column: &'static str) -> Filter {
        Filter::of(name, column, Kind::Time)
    }

    /// A flag.
    pub const fn bool(name: &'static str, column: &'static str) -> Filter {
        Filter::of(name, column, Kind::Bool)
    }
}

/// How a resource's table is listed.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    /// `FROM` clause with joins, e.g. `repositories r`.
    pub from: &'static str,
    /// The id column, e.g. `r.id`.
    pub id: &'static str,
    /// The `SELECT` list; each column is read back by name into the resource's row type.
    pub columns: &'static str,
    /// The fields a client may filter on.
    pub filters: &'static [Filter],
    /// The `pulp_labels` column (a JSON object as text), when the resource has labels.
    pub labels: Option<&'static str>,
    /// `ordering` names the API accepts and the SQL expression each sorts by.
    pub orderings: &'static [(&'static str, &'static str)],
    /// The ordering when the request gives none (`-` for descending).
    pub default_ordering: &'static str,
}

/// A value bound to a placeholder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Bind {
    /// A text value.
    Text(String),
    /// An integer value.
    Int(i64),
}

impl From<&str> for Bind {
    fn from(text: &str) -> Self {
        Bind::Text(text.to_owned())
    }
}

impl From<String> for Bind {
    fn from(text: String) -> Self {
        Bind::Text(text)
    }
}

impl From<i64> for Bind {
    fn from(int: i64) -> Self {
        Bind::Int(int)
    }
}

/// A query with arguments, as `sqlx::query` makes it.
pub type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// A query whose rows are read into `R` by column name.
pub type AnyQueryAs<'q, R> = sqlx::query::QueryAs<'q, sqlx::Any, R, sqlx::any::AnyArguments<'q>>;

/// The `WHERE` conditions of a query and the values they bind. A `?` in a condition becomes the
/// next `$n` placeholder, so conditions compose without counting placeholders by hand.
#[derive(Debug, Default, Clone)]
pub struct Conditions {
    conditions: Vec<String>,
    binds: Vec<Bind>,
}

impl Conditions {
    /// No conditions yet.
    pub fn new() -> Conditions {
        Conditions::default()
    }

    /// One condition.
    pub fn of(condition: &str, binds: impl IntoIterator<Item = Bind>) -> Conditions {
        let mut conditions = Conditions::new();
        conditions.push(condition, binds);
        conditions
    }

    /// Adds a condition; each `?` in it takes the next of `binds`.
    pub fn push(&mut self, condition: &str, binds: impl IntoIterator<Item = Bind>) {
        let mut binds = binds.into_iter();
        let mut sql = String::with_capacity(condition.len() + 8);
        for ch in condition.chars() {
            if ch == '?' {
                self.binds
                    .push(binds.next().expect("a bind value for every placeholder"));
                sql.push_str(&format!("${}", self.binds.len()));
            } else {
                sql.push(ch);
            }
        }
        debug_assert!(binds.next().is_none(), "a placeholder for every bind value");
        self.conditions.push(sql);
    }

    /// Adds all of `other`'s conditions.
    pub fn extend(&mut self, other: Conditions) {
        for (condition, binds) in other.split() {
            self.push(&condition, binds);
        }
    }

    /// One condition that holds where all the conditions of at least one of `alternatives` hold
    /// (none: nowhere).
    pub fn any_of(alternatives: Vec<Conditions>) -> Conditions {
        let mut clauses = Vec::new();
        let mut binds = Vec::new();
        for alternative in alternatives {
            match alternative.conjunction() {
                None => clauses.push("1 = 1".to_owned()),
                Some((clause, values)) => {
                    clauses.push(clause);
                    binds.extend(values);
                }
            }
        }
        if clauses.is_empty() {
            return Conditions::of("1 = 0", []);
        }
        Conditions::of(&format!("({})", clauses.join(" OR ")), binds)
    }

    /// The rows `conditions` leave out (`NOT` of them all; no row when they are none). A
    /// condition that is unknown on a row (a `NULL` column) leaves the row out of `conditions`,
    /// so it is in here, as Pulp's `difference` of querysets has it.
    pub fn none_of(conditions: Conditions) -> Conditions {
        match conditions.conjunction() {
            None => Conditions::of("1 = 0", []),
            Some((clause, values)) => {
                Conditions::of(&format!("NOT COALESCE({clause}, 1 = 0)"), values)
            }
        }
    }

    /// Every condition in one parenthesized `AND`, with `?` placeholders, and their values;
    /// `None` when there are none.
    fn conjunction(self) -> Option<(String, Vec<Bind>)> {
        let (sql, values): (Vec<String>, Vec<Vec<Bind>>) = self.split().into_iter().unzip();
        if sql.is_empty() {
            return None;
        }
        let parts: Vec<String> = sql.iter().map(|part| format!("({part})")).collect();
        Some((
            format!("({})", parts.join(" AND ")),
            values.into_iter().flatten().collect(),
        ))
    }

    /// Each condition with `?` for its placeholders again, and its values.
    fn split(self) -> Vec<(String, Vec<Bind>)> {
        let mut binds = self.binds.into_iter();
        self.conditions
            .into_iter()
            .map(|condition| {
                let mut sql = String::with_capacity(condition.len());
                let mut taken = Vec::new();
                let mut chars = condition.chars().peekable();
                while let Some(ch) = chars.next() {
                    if ch == '$' && chars.peek().is_some_and(char::is_ascii_digit) {
                        while chars.peek().is_some_and(char::is_ascii_digit) {
                            chars.next();
                        }
                        sql.push('?');
                        taken.extend(binds.next());
                    } else {
                        sql.push(ch);
                    }
                }
                (sql, taken)
            })
            .collect()
    }

    /// ` WHERE a AND b ...`, or nothing.
    pub fn where_clause(&self) -> String {
        if self.conditions.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.conditions.join(" AND "))
        }
    }

    /// The number the next placeholder gets.
    pub fn next_placeholder(&self) -> usize {
        self.binds.len() + 1
    }

    /// Binds the values of the conditions, in order.
    pub fn bind<'q>(&self, mut query: AnyQuery<'q>) -> AnyQuery<'q> {
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }

    /// Binds the values of the conditions, in order, to a query read into `R`.
    pub fn bind_as<'q, R>(&self, mut query: AnyQueryAs<'q, R>) -> AnyQueryAs<'q, R> {
        for bind in &self.binds {
            query = match bind {
                Bind::Text(text) => query.bind(text.clone()),
                Bind::Int(int) => query.bind(*int),
            };
        }
        query
    }
}

/// The rows a caller may see: one condition on the listed table, applied to every list and show
/// (a row outside it is neither counted nor shown, and its show answers 404).
#[derive(Debug, Clone, Default)]
pub struct Visibility(Option<Conditions>);

impl Visibility {
    /// Every row.
    pub fn all() -> Visibility {
        Visibility(None)
    }

    /// Whether every row is visible.
    pub fn is_all(&self) -> bool {
        self.0.is_none()
    }

    /// Only the rows matching `conditions`.
    pub fn only(conditions: Conditions) -> Visibility {
        Visibility(Some(conditions))
    }

    /// `conditions`, and the rows outside this visibility left out (to combine visibilities of
    /// several kinds of rows in one list).
    pub fn narrow(&self, mut conditions: Conditions) -> Conditions {
        self.apply(&mut conditions);
        conditions
    }

    fn apply(&self, conditions: &mut Conditions) {
        if let Some(visible) = &self.0 {
            conditions.extend(visible.clone());
        }
    }
}

/// A resource whose rows are read by column name from the table its [`ListSpec`] describes.
pub trait Resource: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin + 'static {
    /// How the resource is listed.
    const SPEC: ListSpec;

    /// The id of the row (every resource is addressed by one).
    fn id(&self) -> &str;
}

/// Declares a resource's row type and its [`Resource`] impl from one list of fields, so a column
/// is named once: the struct (with an `id: String` first, which every resource has) and the
/// `SELECT` list read back into it come from the same fields.
///
/// ```text
/// resource! {
///     /// A row of `repositories`, with its remote's plugin and type.
///     pub(crate) struct Repository in "repositories r LEFT JOIN remotes m ON m.id = r.remote_id" as r {
///         name: String,
///         labels: String,
///         created: String,
///         remote_plugin: Option<String> = "m.plugin",
///         #[sqlx(flatten)]
///         remote: JoinedRemote => "r.remote_id, m.plugin AS remote_plugin, m.type_name AS remote_type",
///     }
///     filters: text name, time pulp_created = created;
///     labels: labels;
///     orderings: name, pulp_created = created, pk = id;
///     default_ordering: "name";
///     collection: Repositories;
/// }
/// ```
///
/// `in "<FROM>" as r` reads the fields from the alias `r` of the `FROM` clause (no `as`: from
/// the table itself). A field is its own column of that table, `= "<expression>"` reads it from
/// an expression (`… AS field`), `=> "<columns>"` selects these columns for a flattened field.
/// A filter is its [`Kind`] (`text`, `int`, `time`, `bool`) and query parameter, an ordering its
/// name; either compares the column of its name, or `= column` of the table, or `= "<SQL>"`.
/// `labels:` names the `pulp_labels` column of a resource that has labels; `collection:` the
/// [`Collection`](crate::domain::hrefs::Collection) of a plugin-typed one, whose
/// [`TypedRow`](super::typed::TypedRow) it declares (from its `plugin`, `type_name` and `id`).
///
/// `impl <Type> in "<FROM>" columns <COLUMNS>;` followed by the same list declares the
/// [`Resource`] of a row type a lower layer owns (with an `id` field), with the columns it names.
macro_rules! resource {
    (
        $(#[$attr:meta])*
        $vis:vis struct $name:ident in $from:literal $(as $alias:ident)? {
            $(
                $(#[$field_attr:meta])*
                $field:ident : $type:ty $(= $expression:literal)? $(=> $columns:literal)?
            ),* $(,)?
        }
        $($spec:tt)*
    ) => {
        $(#[$attr])*
        #[derive(Debug, sqlx::FromRow)]
        $vis struct $name {
            id: String,
            $($(#[$field_attr])* $field: $type,)*
        }

        $crate::api::list::resource! {
            @impl $name $from [$($alias)?]
            ($crate::api::list::resource!(
                @columns [$($alias)?] $($field [$($expression)?] [$($columns)?])*
            ));
            $($spec)*
        }
    };
    (
        impl $name:ident in $from:literal $(as $alias:ident)? columns $columns:expr;
        $($spec:tt)*
    ) => {
        $crate::api::list::resource! { @impl $name $from [$($alias)?] ($columns); $($spec)* }
    };
    (
        @impl $name:ident $from:literal $prefix:tt ($columns:expr);
        filters: $($kind:ident $filter:ident $(= $filter_column:tt)?),* ;
        $(labels: $labels:tt;)?
        orderings: $($ordering:ident $(= $ordering_column:tt)?),* ;
        default_ordering: $default:literal;
        $(collection: $collection:ident;)?
    ) => {
        impl $crate::api::list::Resource for $name {
            const SPEC: $crate::api::list::ListSpec = $crate::api::list::ListSpec {
                from: $from,
                id: $crate::api::list::resource!(@column $prefix id),
                columns: $columns,
                filters: &[$($crate::api::list::Filter::$kind(
                    stringify!($filter),
                    $crate::api::list::resource!(@column $prefix $filter $($filter_column)?),
                )),*],
                labels: $crate::api::list::resource!(@labels $prefix $($labels)?),
                orderings: &[$((
                    stringify!($ordering),
                    $crate::api::list::resource!(@column $prefix $ordering $($ordering_column)?),
                )),*],
                default_ordering: $default,
            };

            fn id(&self) -> &str {
                &self.id
            }
        }
        $(
            impl $crate::api::typed::TypedRow for $name {
                const COLLECTION: $crate::domain::hrefs::Collection =
                    $crate::domain::hrefs::Collection::$collection;

                fn key(&self) -> (&str, &str, &str) {
                    (&self.plugin, &self.type_name, &self.id)
                }
            }
        )?
    };
    (@columns $prefix:tt $($field:ident $expression:tt $columns:tt)*) => {
        concat!(
            $crate::api::list::resource!(@column $prefix id)
            $(, ", ", $crate::api::list::resource!(@select $prefix $field $expression $columns))*
        )
    };
    (@select $prefix:tt $field:ident [] []) => {
        $crate::api::list::resource!(@column $prefix $field)
    };
    (@select $prefix:tt $field:ident [$expression:literal] []) => {
        concat!($expression, " AS ", stringify!($field))
    };
    (@select $prefix:tt $field:ident [] [$columns:literal]) => {
        $columns
    };
    (@labels $prefix:tt) => {
        None
    };
    (@labels $prefix:tt $labels:tt) => {
        Some($crate::api::list::resource!(@column $prefix $labels))
    };
    (@column $prefix:tt $name:ident $column:literal) => {
        $column
    };
    (@column $prefix:tt $name:ident $column:ident) => {
        $crate::api::list::resource!(@column $prefix $column)
    };
    (@column $prefix:tt $column:literal) => {
        $column
    };
    (@column [] $column:ident) => {
        stringify!($column)
    };
    (@column [$alias:ident] $column:ident) => {
        concat!(stringify!($alias), ".", stringify!($column))
    };
}
pub(crate) use resource;

/// `limit`/`offset` of a list request.
#[derive(Debug, Clone, Copy)]
pub struct Page {
    /// Items per page.
    pub limit: i64,
    /// Items skipped.
    pub offset: i64,
}

/// Default items per page, as in Pulp.
const DEFAULT_LIMIT: i64 = 100;
/// Most items per page.
const MAX_LIMIT: i64 = 1000;

impl Page {
    /// Reads `limit` and `offset` from query parameters.
    pub fn from_query(query: &ListQuery) -> ApiResult<Page> {
        let parse = |name: &str, default: i64| match query.get(name) {
            None => Ok(default),
            Some(text) => text
                .parse::<i64>()
                .ok()
                .filter(|value| *value >= 0)
                .ok_or_else(|| ApiError::field(name, "A valid non-negative integer is required.")),
        };
        // `limit=0` means "the default", as in Django REST framework.
        let limit = match parse("limit", DEFAULT_LIMIT)? {
            0 => DEFAULT_LIMIT,
            limit => limit.min(MAX_LIMIT),
        };
        Ok(Page {
            limit,
            offset: parse("offset", 0)?,
        })
    }

    /// The paginated response `{count, next, previous, results}`, each result shaped by the
    /// request's `fields`/`exclude_fields`.
    pub fn respond<V: Serialize>(
        &self,
        app: &App,
        uri: &Uri,
        count: i64,
        results: impl IntoIterator<Item = V>,
    ) -> Response {
        let link = |offset: i64| {
            let mut query = query_pairs(uri);
            query.retain(|(key, _)| key != "offset" && key != "limit");
            query.push(("limit".into(), self.limit.to_string()));
            query.push(("offset".into(), offset.to_string()));
            let encoded = url::form_urlencoded::Serializer::new(String::new())
                .extend_pairs(query)
                .finish();
            format!("{}{}?{encoded}", app.origin, uri.path())
        };
        let end = self.offset.saturating_add(self.limit);
        let shape = Shape::from_uri(uri);
        Json(Paginated {
            count,
            next: (end < count).then(|| link(end)),
            previous: (self.offset > 0).then(|| link((self.offset - self.limit).max(0))),
            results: results.into_iter().map(|item| shape.view(&item)).collect(),
        })
        .into_response()
    }
}

/// The fields every object answers first: its href, its Pulp resource name, and its times.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Identity {
    /// The object's URL path.
    pub pulp_href: String,
    /// `prn:<app>.<model>:<uuid>`.
    pub prn: String,
    /// When it was created.
    #[schema(format = DateTime)]
    pub pulp_created: String,
    /// When it last changed.
    #[schema(format = DateTime)]
    pub pulp_last_updated: String,
}

impl Identity {
    /// The identity of object `id` of core's `model` (`prn:core.<model>:<id>`).
    pub fn core(
        pulp_href: String,
        model: &str,
        id: &str,
        created: &str,
        updated: &str,
    ) -> Identity {
        Identity {
            pulp_href,
            prn: format!("prn:core.{model}:{id}"),
            pulp_created: created.to_owned(),
            pulp_last_updated: updated.to_owned(),
        }
    }

    /// The identity of object `id` of a plugin's type, whose model is the type's name followed by
    /// the resource's (`prn:file.filerepository:<id>`).
    pub fn typed(
        pulp_href: String,
        (plugin, type_name, id): (&str, &str, &str),
        resource: &str,
        created: &str,
        updated: &str,
    ) -> Identity {
        Identity {
            pulp_href,
            prn: format!("prn:{plugin}.{type_name}{resource}:{id}"),
            pulp_created: created.to_owned(),
            pulp_last_updated: updated.to_owned(),
        }
    }

    /// The identity of an object that never changes after it is created.
    pub fn immutable(pulp_href: String, prn: String, created: String) -> Identity {
        Identity {
            pulp_href,
            prn,
            pulp_last_updated: created.clone(),
            pulp_created: created,
        }
    }
}

/// A page of a list, as Pulp answers it.
#[derive(Debug, Serialize)]
struct Paginated {
    count: i64,
    next: Option<String>,
    previous: Option<String>,
    results: Vec<Value>,
}

/// The decoded `key=value` pairs of a URI's query, in their order (none without a query): the
/// page links keep them and [`Shape`] reads its fields from them.
fn query_pairs(uri: &Uri) -> Vec<(String, String)> {
    uri.query()
        .map(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default()
}

/// `fields` and `exclude_fields` of a request: which top-level fields of each object to answer.
#[derive(Debug, Default)]
pub struct Shape {
    fields: Option<Vec<String>>,
    exclude: Vec<String>,
}

impl Shape {
    /// Reads `fields` and `exclude_fields` (comma-separated, possibly repeated) from a URI.
    pub fn from_uri(uri: &Uri) -> Shape {
        let mut shape = Shape::default();
        for (key, value) in query_pairs(uri) {
            let names = split_list(&value).map(str::to_owned);
            match key.as_str() {
                "fields" => shape.fields.get_or_insert_with(Vec::new).extend(names),
                "exclude_fields" => shape.exclude.extend(names),
                _ => {}
            }
        }
        shape
    }

    /// Keeps only the requested fields of an object, minus the excluded ones.
    pub fn apply(&self, value: Value) -> Value {
        let Value::Object(mut map) = value else {
            return value;
        };
        if let Some(fields) = &self.fields {
            map.retain(|key, _| fields.iter().any(|field| field == key));
        }
        for field in &self.exclude {
            map.remove(field);
        }
        Value::Object(map)
    }

    /// A response view, shaped.
    pub fn view(&self, view: &impl Serialize) -> Value {
        // A view is plain data: serializing it to a `Value` cannot fail.
        self.apply(serde_json::to_value(view).unwrap_or(Value::Null))
    }
}

/// A detail response shaped by the request's `fields` / `exclude_fields`.
pub fn shaped(uri: &Uri, view: &impl Serialize) -> Json<Value> {
    Json(Shape::from_uri(uri).view(view))
}

/// A response view as a JSON object (through the same path as lists, so a view's plugin fields
/// never shadow its own).
pub fn json(view: &impl Serialize) -> Json<Value> {
    Json(Shape::default().view(view))
}

/// Lists `R`: the spec's filters and the `extra` conditions (the route's own, e.g. the plugin
/// type), within `visibility`, ordered and paginated, each row answered as `view` makes it.
pub async fn list<R: Resource, V: Serialize>(
    app: &App,
    request: &ListRequest,
    extra: Conditions,
    visibility: &Visibility,
    view: impl Fn(R) -> V,
) -> ApiResult<Response> {
    list_with_total(app, request, (extra, visibility), view, None).await
}

/// Lists `R` as [`list`] does; a `total` the caller counted more cheaply than the list's own
/// conditions would (and equal to what they would count) is answered as the `count`.
pub async fn list_with_total<R: Resource, V: Serialize>(
    app: &App,
    request: &ListRequest,
    (extra, visibility): (Conditions, &Visibility),
    view: impl Fn(R) -> V,
    total: Option<i64>,
) -> ApiResult<Response> {
    let page = Page::from_query(&request.query)?;
    let (total, rows) =
        fetch_rows::<R>(&app.db, &request.query, (extra, visibility), &page, total).await?;
    Ok(page.respond(app, &request.uri, total, rows.into_iter().map(view)))
}

/// Lists `R` as [`list`] does, every row the `extra` conditions leave (the caller may see them all,
/// or the route checked what they may see), each answered as its `V`.
pub async fn list_all<R: Resource, V: Serialize + From<R>>(
    app: &App,
    request: &ListRequest,
    extra: Conditions,
) -> ApiResult<Response> {
    list(app, request, extra, &Visibility::all(), V::from).await
}

/// One page of `R` and the total count: the spec's filters from `query` and `extra`, within
/// `visibility`, in the requested order.
pub async fn fetch_page<R: Resource>(
    db: &Db,
    query: &ListQuery,
    conditions: Conditions,
    visibility: &Visibility,
    page: &Page,
) -> ApiResult<(i64, Vec<R>)> {
    fetch_rows(db, query, (conditions, visibility), page, None).await
}

/// [`fetch_page`], counting the rows unless `known_total` says how many there are.
async fn fetch_rows<R: Resource>(
    db: &Db,
    query: &ListQuery,
    (mut conditions, visibility): (Conditions, &Visibility),
    page: &Page,
    known_total: Option<i64>,
) -> ApiResult<(i64, Vec<R>)> {
    let spec = &R::SPEC;
    filter(db.backend(), query, spec, &mut conditions)?;
    visibility.apply(&mut conditions);
    let order = order_by(query, spec)?;
    let filter = conditions.where_clause();
    let total: i64 = match known_total {
        Some(total) => total,
        None => {
            let count_sql = format!("SELECT COUNT(*) FROM {}{filter}", spec.from);
            sqlx::Row::get(
                &conditions
                    .bind(sqlx::query(&count_sql))
                    .fetch_one(db.pool())
                    .await?,
                0,
            )
        }
    };
    let page_sql = page_sql(spec, &filter, &order, conditions.next_placeholder());
    let rows = conditions
        .bind_as(sqlx::query_as::<_, R>(&page_sql))
        .bind(page.limit)
        .bind(page.offset)
        .fetch_all(db.pool())
        .await?;
    Ok((total, rows))
}

/// The query of one page of `spec`'s rows: `filter` and `order` as [`Conditions::where_clause`]
/// and [`order_by`] write them, the limit and offset bound at `$n` and `$n+1`.
fn page_sql(spec: &ListSpec, filter: &str, order: &str, n: usize) -> String {
    format!(
        "SELECT {} FROM {}{filter}{order} LIMIT ${n} OFFSET ${}",
        spec.columns,
        spec.from,
        n + 1
    )
}

/// The one `R` matching `conditions` within `visibility`, or 404.
pub async fn fetch_one<R: Resource>(
    db: &Db,
    mut conditions: Conditions,
    visibility: &Visibility,
) -> ApiResult<R> {
    visibility.apply(&mut conditions);
    let spec = &R::SPEC;
    let sql = format!(
        "SELECT {} FROM {}{}",
        spec.columns,
        spec.from,
        conditions.where_clause()
    );
    conditions
        .bind_as(sqlx::query_as::<_, R>(&sql))
        .fetch_optional(db.pool())
        .await?
        .ok_or_else(ApiError::not_found)
}

/// The `R` whose id is `id` (a path segment: anything but a UUID is a 404 before SQL runs),
/// within `visibility` and the route's `extra` conditions.
pub async fn fetch_by_id<R: Resource>(
    db: &Db,
    id: &str,
    extra: Conditions,
    visibility: &Visibility,
) -> ApiResult<R> {
    let mut conditions =
        Conditions::of(&format!("{} = ?", R::SPEC.id), [Bind::from(object_id(id)?)]);
    conditions.extend(extra);
    fetch_one(db, conditions, visibility).await
}

/// A path id that must be a UUID; anything else is a 404 before any SQL runs.
pub fn object_id(id: &str) -> ApiResult<String> {
    uuid::Uuid::parse_str(id)
        .map(|uuid| uuid.to_string())
        .map_err(|_| ApiError::not_found())
}

/// Adds the conditions of every filter in `query` that `spec` knows.
pub fn filter(
    backend: Backend,
    query: &ListQuery,
    spec: &ListSpec,
    conditions: &mut Conditions,
) -> ApiResult<()> {
    for (param, value) in query {
        if value.is_empty() {
            continue;
        }
        let (name, lookup) = param.split_once("__").unwrap_or((param, "exact"));
        if let Some(field) = spec.filters.iter().find(|field| field.name == name) {
            lookup_condition(field, lookup, param, value, conditions)?;
        }
    }
    if let (Some(labels), Some(select)) = (spec.labels, query.get("pulp_label_select")) {
        label_select(backend, labels, select, conditions)?;
    }
    if let Some(list) = query.get("pulp_href__in") {
        let ids = split_list(list)
            .map(|href| {
                hrefs::object_id(href).ok_or_else(|| {
                    ApiError::field(
                        "pulp_href__in",
                        format!("Invalid hyperlink - {href} is not a valid href."),
                    )
                })
            })
            .collect::<ApiResult<Vec<_>>>()?;
        in_list(
            conditions,
            spec.id,
            ids.into_iter().map(Bind::Text).collect(),
        );
    }
    if let Some(text) = query.get("q").filter(|text| !text.trim().is_empty()) {
        let expression =
            list_expression::parse(text).map_err(|message| ApiError::field("q", message))?;
        conditions.extend(expression_conditions(backend, spec, &expression)?);
    }
    if let Some(list) = query.get("prn__in") {
        let ids = split_list(list)
            .map(|prn| {
                prn_id(prn)
                    .ok_or_else(|| ApiError::field("prn__in", format!("{prn} is not a valid PRN.")))
            })
            .collect::<ApiResult<Vec<_>>>()?;
        in_list(
            conditions,
            spec.id,
            ids.into_iter().map(Bind::Text).collect(),
        );
    }
    Ok(())
}

/// The conditions of a `q` expression: each term as the list's own filter of that name would
/// make it, combined as the expression says. Only the filters of the list's spec take part
/// (those a route reads itself, such as content's `repository_version`, do not), with pulpcore's
/// messages for a term that names no filter of the list, `q` itself or `ordering`.
fn expression_conditions(
    backend: Backend,
    spec: &ListSpec,
    expression: &Expression,
) -> ApiResult<Conditions> {
    let parts = |parts: &[Expression]| {
        parts
            .iter()
            .map(|part| expression_conditions(backend, spec, part))
            .collect::<ApiResult<Vec<_>>>()
    };
    Ok(match expression {
        Expression::Term(key, value) => {
            let (name, lookup) = key.split_once("__").unwrap_or((key, "exact"));
            let known = spec
                .filters
                .iter()
                .any(|field| field.name == name && field.kind.lookups().contains(&lookup))
                || (key == "pulp_label_select" && spec.labels.is_some())
                || key == "pulp_href__in"
                || key == "prn__in";
            let refused = match key.as_str() {
                "q" => Some("You cannot use 'q' in complex filtering.".to_owned()),
                "ordering" => {
                    Some("An ordering filter cannot be used in complex filtering.".to_owned())
                }
                _ if !known => Some(format!("Filter '{key}' does not exist.")),
                _ => None,
            };
            if let Some(message) = refused {
                return Err(ApiError::field("q", message));
            }
            let mut conditions = Conditions::new();
            let term = ListQuery::from([(key.clone(), value.clone())]);
            filter(backend, &term, spec, &mut conditions)?;
            conditions
        }
        Expression::Not(inner) => Conditions::none_of(expression_conditions(backend, spec, inner)?),
        Expression::And(all) => {
            let mut conditions = Conditions::new();
            for part in parts(all)? {
                conditions.extend(part);
            }
            conditions
        }
        Expression::Or(any) => Conditions::any_of(parts(any)?),
    })
}

/// The condition of one `field__lookup=value` parameter. A lookup the field's kind does not take
/// is ignored, as django-filter ignores parameters it does not declare.
fn lookup_condition(
    field: &Filter,
    lookup: &str,
    param: &str,
    value: &str,
    conditions: &mut Conditions,
) -> ApiResult<()> {
    let column = field.column;
    let comparison = match lookup {
        "exact" => "=",
        "gt" => ">",
        "gte" => ">=",
        "lt" => "<",
        "lte" => "<=",
        _ => "",
    };
    if field.kind == Kind::Text
        && let Some((condition, binds)) = text_condition(column, lookup, value)
    {
        conditions.push(&condition, binds);
        return Ok(());
    }
    match (field.kind, lookup) {
        (Kind::Text, "in") => in_list(
            conditions,
            column,
            split_list(value).map(Bind::from).collect(),
        ),
        (Kind::Int, "exact" | "gt" | "gte" | "lt" | "lte") => conditions.push(
            &format!("{column} {comparison} ?"),
            [Bind::Int(parse_int(param, value)?)],
        ),
        (Kind::Int, "in") => {
            let values = split_list(value)
                .map(|item| parse_int(param, item).map(Bind::Int))
                .collect::<ApiResult<Vec<_>>>()?;
            in_list(conditions, column, values);
        }
        (Kind::Time, "exact" | "gt" | "gte" | "lt" | "lte") => conditions.push(
            &format!("{column} {comparison} ?"),
            [Bind::Text(stored_time(param, value)?)],
        ),
        (Kind::Bool, "exact") => {
            let flag = match value {
                "true" | "True" | "1" => 1,
                "false" | "False" | "0" => 0,
                _ => return Err(ApiError::field(param, "Enter a valid boolean.")),
            };
            conditions.push(&format!("{column} = ?"), [Bind::Int(flag)]);
        }
        _ => {}
    }
    Ok(())
}

/// The condition of a text lookup other than `in` on `column` (`exact`, `iexact`, `contains`,
/// `icontains`, `startswith`, `istartswith`), with its binds; `None` for another lookup.
/// `contains` and `startswith` are case-sensitive on both databases (SQLite's `LIKE` is not).
pub fn text_condition(column: &str, lookup: &str, value: &str) -> Option<(String, Vec<Bind>)> {
    Some(match lookup {
        "exact" => (format!("{column} = ?"), vec![Bind::from(value)]),
        "iexact" => (
            format!("LOWER({column}) = LOWER(?)"),
            vec![Bind::from(value)],
        ),
        "contains" => (
            format!("REPLACE({column}, CAST(? AS TEXT), '') <> {column}"),
            vec![Bind::from(value)],
        ),
        "icontains" => (
            format!("LOWER({column}) LIKE LOWER(?) ESCAPE '\\'"),
            vec![Bind::Text(format!("%{}%", like_escape(value)))],
        ),
        "startswith" => (
            format!("SUBSTR({column}, 1, LENGTH(CAST(? AS TEXT))) = ?"),
            vec![Bind::from(value), Bind::from(value)],
        ),
        "istartswith" => (
            format!("LOWER({column}) LIKE LOWER(?) ESCAPE '\\'"),
            vec![Bind::Text(format!("{}%", like_escape(value)))],
        ),
        _ => return None,
    })
}

fn parse_int(param: &str, value: &str) -> ApiResult<i64> {
    value
        .trim()
        .parse()
        .map_err(|_| ApiError::field(param, "Enter a whole number."))
}

/// A date/time filter value as stored (fixed-width RFC 3339 UTC, comparable as text). A value
/// without a zone is UTC; a bare date is its midnight.
pub fn stored_time(param: &str, value: &str) -> ApiResult<String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
    let value = value.trim();
    let parsed = DateTime::parse_from_rfc3339(value)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| NaiveDateTime::parse_from_str(value, "%Y-%m-%d %H:%M:%S%.f"))
                .map(|at| at.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .map(|day| day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc())
        })
        .map_err(|_| ApiError::field(param, "Enter a valid date/time."))?;
    Ok(crate::db::stamp(parsed))
}

/// The comma-separated items of a `__in` filter.
pub fn split_list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

/// `column IN (...)`; an empty list matches nothing.
pub fn in_list(conditions: &mut Conditions, column: &str, values: Vec<Bind>) {
    if values.is_empty() {
        conditions.push("1 = 0", []);
        return;
    }
    let marks = vec!["?"; values.len()].join(", ");
    conditions.push(&format!("{column} IN ({marks})"), values);
}

/// The id of a Pulp resource name, `prn:<app>.<model>:<uuid>`.
pub fn prn_id(prn: &str) -> Option<String> {
    let rest = prn.strip_prefix("prn:")?;
    let (model, id) = rest.rsplit_once(':')?;
    if !model.contains('.') {
        return None;
    }
    uuid::Uuid::parse_str(id).ok().map(|uuid| uuid.to_string())
}

/// Escapes `LIKE` wildcards (the conditions use `ESCAPE '\'`).
fn like_escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// One term of `pulp_label_select`.
#[derive(Debug, PartialEq, Eq)]
enum LabelTerm {
    Equals(String, String),
    NotEquals(String, String),
    Contains(String, String),
    Exists(String),
    Missing(String),
}

/// Parses Pulp's label selection syntax: comma-separated `key=value`, `key!=value`, `key~text`,
/// `key` and `!key`, all of which must hold. Keys are word characters and spaces.
fn parse_label_select(select: &str) -> ApiResult<Vec<LabelTerm>> {
    let invalid = |term: &str| {
        ApiError::field(
            "pulp_label_select",
            format!("Invalid search term: '{term}'."),
        )
    };
    let mut terms = Vec::new();
    for term in select.split(',') {
        let (negated, body) = match term.strip_prefix('!') {
            Some(body) => (true, body),
            None => (false, term),
        };
        let key_end = body
            .find(|ch: char| !(ch.is_alphanumeric() || ch == '_' || ch.is_whitespace()))
            .unwrap_or(body.len());
        let (key, rest) = body.split_at(key_end);
        if key.is_empty() {
            return Err(invalid(term));
        }
        let key = key.to_owned();
        let parsed = if rest.is_empty() {
            if negated {
                LabelTerm::Missing(key)
            } else {
                LabelTerm::Exists(key)
            }
        } else if negated {
            return Err(ApiError::field(
                "pulp_label_select",
                format!("Cannot use an operator with '!{key}'."),
            ));
        } else if let Some(value) = rest.strip_prefix("!=") {
            LabelTerm::NotEquals(key, value.to_owned())
        } else if let Some(value) = rest.strip_prefix('=') {
            LabelTerm::Equals(key, value.to_owned())
        } else if let Some(value) = rest.strip_prefix('~') {
            LabelTerm::Contains(key, value.to_owned())
        } else {
            return Err(invalid(term));
        };
        terms.push(parsed);
    }
    Ok(terms)
}

/// Adds the conditions of a `pulp_label_select`. Labels are a JSON object stored as text; the
/// value of one key is read with the engine's JSON function (`json_extract` on SQLite, `->>` on
/// PostgreSQL), the only part of the SQL that differs between them. Label values are strings, so
/// a missing key and only a missing key reads as NULL.
fn label_select(
    backend: Backend,
    column: &str,
    select: &str,
    conditions: &mut Conditions,
) -> ApiResult<()> {
    let value_of = |key: &str| -> (String, Bind) {
        match backend {
            // Keys are word characters and spaces, so quoting them in a JSON path is safe.
            Backend::Sqlite => (
                format!("json_extract({column}, ?)"),
                Bind::Text(format!("$.\"{key}\"")),
            ),
            Backend::Postgres => (
                format!("(CAST({column} AS jsonb) ->> CAST(? AS TEXT))"),
                Bind::Text(key.to_owned()),
            ),
        }
    };
    for term in parse_label_select(select)? {
        let (condition, key, value) = match term {
            LabelTerm::Equals(key, value) => ("{} = ?", key, Some(Bind::Text(value))),
            LabelTerm::NotEquals(key, value) => ("{} <> ?", key, Some(Bind::Text(value))),
            LabelTerm::Contains(key, value) => (
                "LOWER({}) LIKE LOWER(?) ESCAPE '\\'",
                key,
                Some(Bind::Text(format!("%{}%", like_escape(&value)))),
            ),
            LabelTerm::Exists(key) => ("{} IS NOT NULL", key, None),
            LabelTerm::Missing(key) => ("{} IS NULL", key, None),
        };
        let (expr, key) = value_of(&key);
        conditions.push(
            &condition.replace("{}", &expr),
            std::iter::once(key).chain(value),
        );
    }
    Ok(())
}

/// The `ORDER BY` clause of a list: `ordering` is comma-separated field names, `-` for
/// descending, each one the resource allows; the id breaks ties so pages never overlap. It sorts
/// in the direction of the last field, so that an index on `(field, id)` read backwards serves a
/// descending list whole (with the id ascending, both engines sorted each run of equal values
/// again).
pub fn order_by(query: &ListQuery, spec: &ListSpec) -> ApiResult<String> {
    let requested = query
        .get("ordering")
        .map(String::as_str)
        .filter(|value| !value.trim().is_empty())
        .unwrap_or(spec.default_ordering);
    let mut terms = Vec::new();
    let mut last_direction = "ASC";
    for item in split_list(requested) {
        let (name, direction) = match item.strip_prefix('-') {
            Some(name) => (name, "DESC"),
            None => (item, "ASC"),
        };
        let Some((_, sql)) = spec.orderings.iter().find(|(field, _)| *field == name) else {
            let allowed: Vec<String> = spec
                .orderings
                .iter()
                .flat_map(|(field, _)| [field.to_string(), format!("-{field}")])
                .collect();
            return Err(ApiError::field(
                "ordering",
                format!(
                    "Select a valid choice. {item} is not one of the available choices: {}.",
                    allowed.join(", ")
                ),
            ));
        };
        terms.push(format!("{sql} {direction}"));
        last_direction = direction;
    }
    terms.push(format!("{} {last_direction}", spec.id));
    Ok(format!(" ORDER BY {}", terms.join(", ")))
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;
    use crate::api::openapi::{operations::ENDPOINTS, schemas};
    use crate::db::{Batch, SqlValue};

    /// The lists that may sort rows to answer their first page (the whole table, or each run of
    /// equal values again): none of their tables grows with use.
    const MAY_SORT: &[(&str, &str)] = &[
        ("Worker", "a row per running process"),
        ("api_tokens", "listed per user: a few tokens each"),
        (
            "blocklist_entries",
            "listed per repository: a few package names each",
        ),
        ("exports", "one per export run an operator starts"),
        ("group_users", "listed per group: its members"),
        ("imports", "one per import run an operator starts"),
        (
            "role_assignments",
            "listed per user or group; a row per object created by someone without every permission",
        ),
        ("uploads", "chunked uploads end when committed or expire"),
        (
            "users",
            "a row per person; only ties of the unique username sorted again",
        ),
    ];

    /// Pages of every list in its default order, and the content list of one type (its route's
    /// condition), as [`fetch_page`] writes them, by the table each lists.
    fn first_pages() -> BTreeMap<String, (String, Vec<SqlValue>)> {
        let mut pages = BTreeMap::new();
        for endpoint in ENDPOINTS {
            let Some(spec) = schemas::doc(endpoint.resource).spec else {
                continue;
            };
            let order = order_by(&ListQuery::new(), &spec).expect("the default ordering");
            // A list of a subquery is named by its resource.
            let table = match spec.from.split_whitespace().next() {
                Some(table) if !table.starts_with('(') => table.to_owned(),
                _ => format!("{:?}", endpoint.resource),
            };
            let sql = page_sql(&spec, "", &order, 1);
            pages.insert(table, (sql, vec![100.into(), 0.into()]));
        }
        let spec = <crate::api::content::Content as Resource>::SPEC;
        let of_type = Conditions::of(
            crate::api::content::OF_TYPE,
            [Bind::from("python"), Bind::from("python")],
        );
        let order = order_by(&ListQuery::new(), &spec).expect("the default ordering");
        let sql = page_sql(&spec, &of_type.where_clause(), &order, 3);
        let values = vec!["python".into(), "python".into(), 100.into(), 0.into()];
        pages.insert("content of one type".to_owned(), (sql, values));
        pages
    }

    #[test]
    fn the_id_breaks_ties_in_the_direction_of_the_last_field() {
        let spec = <crate::api::tasks::Task as Resource>::SPEC;
        let ordered = |ordering: &str| {
            let query = ListQuery::from([("ordering".to_owned(), ordering.to_owned())]);
            order_by(&query, &spec).expect("a valid ordering")
        };
        assert_eq!(ordered("-pulp_created"), " ORDER BY created DESC, id DESC");
        assert_eq!(ordered("name"), " ORDER BY name ASC, id ASC");
        assert_eq!(
            ordered("-name,pulp_created"),
            " ORDER BY name DESC, created ASC, id ASC"
        );
    }

    #[tokio::test]
    async fn a_list_reads_its_first_page_in_index_order_unless_its_table_stays_small() {
        let mut tables = Vec::new();
        let mut batch = Batch::new();
        for (table, (sql, values)) in first_pages() {
            tables.push(table);
            batch.push(sql, values);
        }
        let plans = crate::db::tests::plans_on_a_new_database(batch).await;
        let sorting: BTreeSet<&str> = (tables.iter())
            .zip(&plans)
            .filter(|(_, plan)| {
                // Whole, or each run of equal values again ("RIGHT PART OF ORDER BY").
                plan.iter().any(|step| step.contains("USE TEMP B-TREE FOR"))
            })
            .map(|(table, _)| table.as_str())
            .collect();
        let small: BTreeSet<&str> = MAY_SORT.iter().map(|(table, _)| *table).collect();
        assert_eq!(
            sorting, small,
            "lists that sort rows for a page, against those allowed to"
        );
    }

    #[test]
    fn label_select_follows_pulp_syntax() {
        assert_eq!(
            parse_label_select("env=prod,tier!=gold,team~ops,reviewed,!legacy").unwrap(),
            vec![
                LabelTerm::Equals("env".into(), "prod".into()),
                LabelTerm::NotEquals("tier".into(), "gold".into()),
                LabelTerm::Contains("team".into(), "ops".into()),
                LabelTerm::Exists("reviewed".into()),
                LabelTerm::Missing("legacy".into()),
            ]
        );
        assert!(parse_label_select("!env=prod").is_err());
        assert!(parse_label_select("=prod").is_err());
        assert!(parse_label_select("env>3").is_err());
    }

    #[test]
    fn prns_name_their_object() {
        let id = "8f0c2d9e-5b1a-4c3e-9d2f-0a1b2c3d4e5f";
        assert_eq!(
            prn_id(&format!("prn:file.filerepository:{id}")),
            Some(id.to_owned())
        );
        assert_eq!(prn_id(&format!("file.filerepository:{id}")), None);
        assert_eq!(prn_id("prn:file.filerepository:nope"), None);
    }

    #[test]
    fn conditions_number_their_placeholders() {
        let mut conditions = Conditions::new();
        conditions.push("a = ?", [Bind::from("x")]);
        conditions.push("b BETWEEN ? AND ?", [Bind::Int(1), Bind::Int(2)]);
        assert_eq!(
            conditions.where_clause(),
            " WHERE a = $1 AND b BETWEEN $2 AND $3"
        );
        assert_eq!(conditions.next_placeholder(), 4);

        let mut more = Conditions::of("c = ?", [Bind::Int(3)]);
        more.extend(conditions);
        assert_eq!(
            more.where_clause(),
            " WHERE c = $1 AND a = $2 AND b BETWEEN $3 AND $4",
            "conditions added from elsewhere are renumbered after the ones already there"
        );
        assert_eq!(
            more.binds,
            [Bind::Int(3), Bind::from("x"), Bind::Int(1), Bind::Int(2)]
        );

        let either = Conditions::any_of(vec![
            Conditions::of("k = ?", [Bind::from("a")]),
            more,
            Conditions::new(),
        ]);
        assert_eq!(
            either.where_clause(),
            " WHERE (((k = $1)) OR ((c = $2) AND (a = $3) AND (b BETWEEN $4 AND $5)) OR 1 = 1)"
        );
        assert_eq!(either.binds.len(), 5);
        assert_eq!(
            Conditions::any_of(Vec::new()).where_clause(),
            " WHERE 1 = 0",
            "no alternative matches nothing"
        );
    }

    #[test]
    fn time_filters_compare_in_stored_form() {
        assert_eq!(
            stored_time("t", "2026-11-28T17:00:00+01:00").unwrap(),
            "2026-11-28T16:00:00.000000Z"
        );
        assert_eq!(
            stored_time("t", "2026-11-28T17:00:00.5").unwrap(),
            "2026-11-28T17:00:00.500000Z",
            "no zone means UTC"
        );
        assert_eq!(
            stored_time("t", "2026-11-28").unwrap(),
            "2026-11-28T00:00:00.000000Z"
        );
        assert!(stored_time("t", "yesterday").is_err());
    }

    #[test]
    fn every_lookup_a_kind_lists_filters() {
        for (kind, value) in [
            (Kind::Text, "a"),
            (Kind::Int, "3"),
            (Kind::Time, "2026-11-28"),
            (Kind::Bool, "true"),
        ] {
            let field = Filter {
                name: "f",
                column: "f",
                kind,
            };
            for lookup in ["exact", "iexact", "contains", "icontains", "startswith"]
                .into_iter()
                .chain(["istartswith", "in", "gt", "gte", "lt", "lte", "regex"])
            {
                let mut conditions = Conditions::new();
                lookup_condition(&field, lookup, "f", value, &mut conditions).unwrap();
                assert_eq!(
                    !conditions.where_clause().is_empty(),
                    kind.lookups().contains(&lookup),
                    "{kind:?} {lookup}: the document offers exactly the lookups that filter"
                );
            }
        }
    }

    #[test]
    fn lookups_follow_the_field_kind() {
        const FIELDS: &[Filter] = &[
            Filter::text("name", "name"),
            Filter::int("size", "size"),
            Filter::bool("is_staff", "is_staff"),
        ];
        let conditions_of = |param: &str, value: &str| {
            let mut conditions = Conditions::new();
            let (name, lookup) = param.split_once("__").unwrap_or((param, "exact"));
            let field = FIELDS.iter().find(|field| field.name == name).unwrap();
            lookup_condition(field, lookup, param, value, &mut conditions).map(|()| conditions)
        };
        assert_eq!(
            conditions_of("size__gte", "3").unwrap().where_clause(),
            " WHERE size >= $1"
        );
        assert!(
            conditions_of("size__gte", "three").is_err(),
            "a number is checked"
        );
        assert!(conditions_of("is_staff", "maybe").is_err());
        assert_eq!(
            conditions_of("name__gte", "a").unwrap().where_clause(),
            "",
            "a lookup text does not take is ignored"
        );
        assert_eq!(
            conditions_of("name__in", "a, b,,c").unwrap().binds,
            [Bind::from("a"), Bind::from("b"), Bind::from("c")]
        );
    }
}
