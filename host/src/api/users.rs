//! `users/` with Pulp's fields (`password` write-only), and each user's API tokens under
//! `users/<id>/tokens/`.
//!
//! Staff manage every user; a user who is not staff sees only themselves. A user manages their
//! own tokens; staff manage anyone's. A token's secret is answered once, when it is created; only
//! its sha256 is stored (see [`crate::auth`]).

use std::collections::HashMap;

use axum::extract::{OriginalUri, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Extension, Json, Router};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::support::{Fields, Page, fetch_text_filtered_page, object_id};
use crate::auth::{TOKEN_PREFIX, TOKEN_USERNAME, User, token_hash};
use crate::auth::{password_hash, random_token};
use crate::db::{new_id, now};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::AppState;

/// Routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/pulp/api/v3/users/", get(list).post(create))
        .route(
            "/pulp/api/v3/users/{id}/",
            get(read).patch(update).put(update).delete(destroy),
        )
        .route(
            "/pulp/api/v3/users/{id}/tokens/",
            get(list_tokens).post(create_token),
        )
        .route(
            "/pulp/api/v3/users/{id}/tokens/{token}/",
            get(read_token).delete(destroy_token),
        )
}

/// Stored instead of a hash for a user without a password: no hex digest equals it, so no
/// password logs in.
const UNUSABLE_PASSWORD: &str = "!";

/// Random characters in a token's secret (about 280 bits).
const TOKEN_SECRET_LEN: usize = 48;

const COLUMNS: &str =
    "id, username, first_name, last_name, email, is_staff, is_active, created, password_hash";

fn to_json(row: &AnyRow) -> Value {
    let id: String = row.get(0);
    json!({
        "pulp_href": hrefs::user(&id),
        "prn": format!("prn:auth.user:{id}"),
        "id": id,
        "username": row.get::<String, _>(1),
        "first_name": row.get::<String, _>(2),
        "last_name": row.get::<String, _>(3),
        "email": row.get::<String, _>(4),
        "is_staff": row.get::<i64, _>(5) != 0,
        "is_active": row.get::<i64, _>(6) != 0,
        "date_joined": row.get::<String, _>(7),
        "groups": [],
        "hidden_fields": [
            {"name": "password", "is_set": row.get::<String, _>(8) != UNUSABLE_PASSWORD}
        ],
    })
}

fn require_staff(user: &User) -> ApiResult<()> {
    if user.is_staff {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

async fn list(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let page = Page::from_query(&query)?;
    let mut filters = String::new();
    let mut values: Vec<String> = Vec::new();
    if !user.is_staff {
        values.push(user.id.clone());
        filters.push_str(&format!(" AND id = ${}", values.len()));
    }
    for (param, condition) in [
        ("username", "username = $N"),
        ("username__contains", "username LIKE $N ESCAPE '\\'"),
        (
            "username__icontains",
            "LOWER(username) LIKE LOWER($N) ESCAPE '\\'",
        ),
        ("email", "email = $N"),
        ("first_name", "first_name = $N"),
        ("last_name", "last_name = $N"),
    ] {
        if let Some(value) = query.get(param) {
            values.push(if param.contains("contains") {
                let escaped = value
                    .replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_");
                format!("%{escaped}%")
            } else {
                value.clone()
            });
            filters.push_str(&format!(
                " AND {}",
                condition.replace("$N", &format!("${}", values.len()))
            ));
        }
    }
    let mut flags = String::new();
    for flag in ["is_staff", "is_active"] {
        match query.get(flag).map(String::as_str) {
            None => {}
            Some("true" | "True" | "1") => flags.push_str(&format!(" AND {flag} = 1")),
            Some("false" | "False" | "0") => flags.push_str(&format!(" AND {flag} = 0")),
            Some(_) => return Err(ApiError::field(flag, "Enter a valid boolean.")),
        }
    }
    let (total, rows) = fetch_text_filtered_page(
        &app,
        "users",
        COLUMNS,
        &format!("{filters}{flags}"),
        &values,
        "username",
        &page,
    )
    .await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(to_json).collect()))
}

/// The user row `id`, when the caller may see it (staff, or the user themselves); 404 otherwise,
/// so a user cannot probe for others' ids.
async fn visible(app: &AppState, caller: &User, id: &str) -> ApiResult<AnyRow> {
    let id = object_id(id)?;
    if !caller.is_staff && caller.id != id {
        return Err(ApiError::not_found());
    }
    sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(&id)
        .fetch_optional(app.db.pool())
        .await?
        .ok_or_else(ApiError::not_found)
}

async fn read(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
) -> ApiResult<Json<Value>> {
    Ok(Json(to_json(&visible(&app, &user, &id).await?)))
}

/// The validated fields of a create or update.
#[derive(Default)]
struct UserFields {
    username: Option<String>,
    /// `Some(None)`: remove the password (no password logs in).
    password: Option<Option<String>>,
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    is_staff: Option<bool>,
    is_active: Option<bool>,
}

fn user_fields(fields: &Fields) -> ApiResult<UserFields> {
    let username = match fields.opt_str("username")? {
        None => None,
        Some(name) => {
            let valid = !name.is_empty()
                && name.len() <= 150
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || "@.+-_".contains(c));
            if !valid {
                return Err(ApiError::field(
                    "username",
                    "Enter a valid username. This value may contain only letters, numbers, and @/./+/-/_ characters (150 at most).",
                ));
            }
            if name == TOKEN_USERNAME {
                return Err(ApiError::field(
                    "username",
                    format!("{TOKEN_USERNAME} is reserved for logging in with an API token."),
                ));
            }
            Some(name)
        }
    };
    let password = if fields.0.contains_key("password") {
        match fields.opt_str("password")? {
            None => Some(None),
            Some(password) if password.is_empty() => {
                return Err(ApiError::field("password", "This field may not be blank."));
            }
            Some(password) => Some(Some(password)),
        }
    } else {
        None
    };
    let email = fields.opt_str("email")?;
    if let Some(email) = &email
        && !email.is_empty()
        && !email.contains('@')
    {
        return Err(ApiError::field("email", "Enter a valid email address."));
    }
    Ok(UserFields {
        username,
        password,
        first_name: fields.opt_str("first_name")?,
        last_name: fields.opt_str("last_name")?,
        email,
        is_staff: fields.opt_bool("is_staff")?,
        is_active: fields.opt_bool("is_active")?,
    })
}

/// `(salt, hash)` to store for a password, or for none.
fn password_columns(password: Option<&str>) -> (String, String) {
    match password {
        Some(password) => {
            let salt = random_token(16);
            let hash = password_hash(&salt, password);
            (salt, hash)
        }
        None => (String::new(), UNUSABLE_PASSWORD.to_owned()),
    }
}

async fn create(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    fields: Fields,
) -> ApiResult<Response> {
    require_staff(&user)?;
    let values = user_fields(&fields)?;
    let username = values
        .username
        .clone()
        .ok_or_else(|| ApiError::field("username", "This field is required."))?;
    let (salt, hash) = password_columns(values.password.flatten().as_deref());
    let id = new_id();
    let mut tx = app.db.begin_write().await?;
    let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1")
        .bind(&username)
        .fetch_optional(&mut *tx)
        .await?;
    if taken.is_some() {
        return Err(ApiError::field(
            "username",
            "A user with that username already exists.",
        ));
    }
    sqlx::query(
        "INSERT INTO users (id, username, password_salt, password_hash, created, first_name, last_name, email, is_staff, is_active)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&id)
    .bind(&username)
    .bind(salt)
    .bind(hash)
    .bind(now())
    .bind(values.first_name.unwrap_or_default())
    .bind(values.last_name.unwrap_or_default())
    .bind(values.email.unwrap_or_default())
    .bind(i64::from(values.is_staff.unwrap_or(false)))
    .bind(i64::from(values.is_active.unwrap_or(true)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(&id)
        .fetch_one(app.db.pool())
        .await?;
    Ok((StatusCode::CREATED, Json(to_json(&row))).into_response())
}

async fn update(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    require_staff(&user)?;
    let row = visible(&app, &user, &id).await?;
    let id: String = row.get(0);
    let values = user_fields(&fields)?;
    let mut tx = app.db.begin_write().await?;
    if let Some(username) = &values.username {
        let taken = sqlx::query("SELECT 1 FROM users WHERE username = $1 AND id <> $2")
            .bind(username)
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await?;
        if taken.is_some() {
            return Err(ApiError::field(
                "username",
                "A user with that username already exists.",
            ));
        }
    }
    for (column, value) in [
        ("username", values.username),
        ("first_name", values.first_name),
        ("last_name", values.last_name),
        ("email", values.email),
    ] {
        if let Some(value) = value {
            sqlx::query(&format!("UPDATE users SET {column} = $2 WHERE id = $1"))
                .bind(&id)
                .bind(value)
                .execute(&mut *tx)
                .await?;
        }
    }
    for (column, value) in [
        ("is_staff", values.is_staff),
        ("is_active", values.is_active),
    ] {
        if let Some(value) = value {
            sqlx::query(&format!("UPDATE users SET {column} = $2 WHERE id = $1"))
                .bind(&id)
                .bind(i64::from(value))
                .execute(&mut *tx)
                .await?;
        }
    }
    if let Some(password) = values.password {
        let (salt, hash) = password_columns(password.as_deref());
        sqlx::query("UPDATE users SET password_salt = $2, password_hash = $3 WHERE id = $1")
            .bind(&id)
            .bind(salt)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM users WHERE id = $1"))
        .bind(&id)
        .fetch_one(app.db.pool())
        .await?;
    Ok(Json(to_json(&row)))
}

async fn destroy(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    require_staff(&user)?;
    let row = visible(&app, &user, &id).await?;
    let id: String = row.get(0);
    let mut tx = app.db.begin_write().await?;
    sqlx::query("DELETE FROM api_tokens WHERE user_id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("DELETE FROM users WHERE id = $1")
        .bind(&id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}

const TOKEN_COLUMNS: &str = "id, user_id, name, prefix, expires, created";

fn token_json(row: &AnyRow) -> Value {
    let (id, user_id): (String, String) = (row.get(0), row.get(1));
    json!({
        "pulp_href": hrefs::user_token(&user_id, &id),
        "user": hrefs::user(&user_id),
        "name": row.get::<String, _>(2),
        "prefix": row.get::<String, _>(3),
        "expires_at": row.get::<Option<String>, _>(4),
        "pulp_created": row.get::<String, _>(5),
    })
}

async fn list_tokens(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    OriginalUri(uri): OriginalUri,
) -> ApiResult<Response> {
    let owner: String = visible(&app, &user, &id).await?.get(0);
    let page = Page::from_query(&query)?;
    let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_tokens WHERE user_id = $1")
        .bind(&owner)
        .fetch_one(app.db.pool())
        .await?;
    let rows = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE user_id = $1 ORDER BY created, id LIMIT $2 OFFSET $3"
    ))
    .bind(&owner)
    .bind(page.limit)
    .bind(page.offset)
    .fetch_all(app.db.pool())
    .await?;
    Ok(page.respond(&app, &uri, total, rows.iter().map(token_json).collect()))
}

/// `POST {name?, expires_at?}`: answers 201 with the token's `token` secret, the only time it is
/// shown.
async fn create_token(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Response> {
    let owner: String = visible(&app, &user, &id).await?.get(0);
    let name = fields.opt_str("name")?.unwrap_or_default();
    if name.len() > 255 {
        return Err(ApiError::field(
            "name",
            "Ensure this field has no more than 255 characters.",
        ));
    }
    let expires = match fields.opt_str("expires_at")? {
        None => None,
        Some(text) => {
            let at = chrono::DateTime::parse_from_rfc3339(&text)
                .map_err(|_| {
                    ApiError::field(
                        "expires_at",
                        "Datetime has wrong format. Use RFC 3339, e.g. 2030-01-01T00:00:00Z.",
                    )
                })?
                .with_timezone(&chrono::Utc);
            if at <= chrono::Utc::now() {
                return Err(ApiError::field(
                    "expires_at",
                    "The expiry must be in the future.",
                ));
            }
            Some(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        }
    };
    let secret = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_SECRET_LEN));
    let prefix = secret[..TOKEN_PREFIX.len() + 6].to_owned();
    let token_id = new_id();
    let mut tx = app.db.begin_write().await?;
    sqlx::query(
        "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, expires, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(&token_id)
    .bind(&owner)
    .bind(&name)
    .bind(&prefix)
    .bind(token_hash(&secret))
    .bind(expires)
    .bind(now())
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let row = sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1"
    ))
    .bind(&token_id)
    .fetch_one(app.db.pool())
    .await?;
    let mut body = token_json(&row);
    body["token"] = Value::String(secret);
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

async fn load_token(app: &AppState, user: &User, id: &str, token: &str) -> ApiResult<AnyRow> {
    let owner: String = visible(app, user, id).await?.get(0);
    sqlx::query(&format!(
        "SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1 AND user_id = $2"
    ))
    .bind(object_id(token)?)
    .bind(&owner)
    .fetch_optional(app.db.pool())
    .await?
    .ok_or_else(ApiError::not_found)
}

async fn read_token(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    Ok(Json(token_json(
        &load_token(&app, &user, &id, &token).await?,
    )))
}

/// Revokes a token: the next request carrying it is refused.
async fn destroy_token(
    State(app): State<AppState>,
    Extension(user): Extension<User>,
    Path((id, token)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let token_id: String = load_token(&app, &user, &id, &token).await?.get(0);
    let mut tx = app.db.begin_write().await?;
    sqlx::query("DELETE FROM api_tokens WHERE id = $1")
        .bind(&token_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(StatusCode::NO_CONTENT)
}
