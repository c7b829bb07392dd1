//! Who is making a request: the one place credentials are checked, for the REST API and for the
//! format routes plugins serve (uploads through `handle`). Below both the REST API and the content
//! app, which share it; it needs only the database.
//!
//! Accepted, in an `Authorization` header:
//! - `Basic user:password` of an active user;
//! - `Bearer <token>` with an API token (`users/<id>/tokens/`) that is not expired and whose user
//!   is active;
//! - `Basic __token__:<token>`, the convention of twine and uv for API tokens.

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use base64::Engine as _;
use sha2::{Digest as _, Sha256};

use crate::db::{Db, now};
use crate::error::ApiError;

/// The username twine and uv send with an API token as the password.
pub const TOKEN_USERNAME: &str = "__token__";

/// Prefix of every API token, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "grn_";

/// An authenticated user, as handlers see it (a request extension on protected routes).
#[derive(Clone, Debug)]
pub struct User {
    /// `users.id`.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Staff may manage other users.
    pub is_staff: bool,
}

tokio::task_local! {
    /// The authenticated user of the request being handled, set by the REST API's
    /// authentication for the rest of the request: what the request queues (a task) is theirs,
    /// as Pulp records the current user.
    pub static CURRENT_USER: User;
}

/// The user of the request being handled, when it is an authenticated REST request.
pub fn current_user() -> Option<User> {
    CURRENT_USER.try_with(Clone::clone).ok()
}

/// The user the request's credentials name, when they are valid; `None` when the request has no
/// credentials or wrong ones (callers decide whether anonymous access is allowed).
pub async fn authenticated_user(db: &Db, headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    Ok(authenticate(db, headers).await?.map(|user| user.username))
}

/// Checks the request's credentials (see the module docs) and names the user they belong to.
pub async fn authenticate(db: &Db, headers: &HeaderMap) -> Result<Option<User>, ApiError> {
    let Some(value) = headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
    else {
        return Ok(None);
    };
    if let Some(token) = strip_scheme(value, "Bearer") {
        return user_for_token(db, token.trim()).await;
    }
    let Some(credentials) = strip_scheme(value, "Basic")
        .and_then(|encoded| {
            base64::engine::general_purpose::STANDARD
                .decode(encoded.trim())
                .ok()
        })
        .and_then(|bytes| String::from_utf8(bytes).ok())
    else {
        return Ok(None);
    };
    let Some((username, password)) = credentials.split_once(':') else {
        return Ok(None);
    };
    if username == TOKEN_USERNAME {
        return user_for_token(db, password).await;
    }
    let Some(row) = sqlx::query_as::<_, PasswordUserRow>(
        "SELECT id, username, is_staff, password_salt, password_hash FROM users
         WHERE username = $1 AND is_active = 1",
    )
    .bind(username)
    .fetch_optional(db.pool())
    .await?
    else {
        return Ok(None);
    };
    use subtle::ConstantTimeEq as _;
    let matches: bool = password_hash(&row.password_salt, password)
        .as_bytes()
        .ct_eq(row.password_hash.as_bytes())
        .into();
    Ok(matches.then(|| row.user.into()))
}

/// `value` without its case-insensitive auth scheme and the space after it.
fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then_some(rest)
}

/// A `users` row, as far as a request's user is concerned.
#[derive(Debug, sqlx::FromRow)]
struct UserRow {
    /// `NULL` for users recorded before users had an id, until startup gives them one.
    id: Option<String>,
    username: String,
    is_staff: i64,
}

/// A `users` row with the password columns a login checks.
#[derive(Debug, sqlx::FromRow)]
struct PasswordUserRow {
    #[sqlx(flatten)]
    user: UserRow,
    password_salt: String,
    password_hash: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id.unwrap_or_default(),
            username: row.username,
            is_staff: row.is_staff != 0,
        }
    }
}

/// The sha256 under which a token's secret is stored and looked up.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

async fn user_for_token(db: &Db, secret: &str) -> Result<Option<User>, ApiError> {
    if !secret.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query_as::<_, UserRow>(
        "SELECT u.id, u.username, u.is_staff FROM api_tokens t JOIN users u ON u.id = t.user_id
         WHERE t.token_hash = $1 AND u.is_active = 1 AND (t.expires IS NULL OR t.expires > $2)",
    )
    .bind(token_hash(secret))
    .bind(now())
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(User::from))
}

/// Salted sha256 of a password. Passwords are random tokens or operator-chosen secrets checked on
/// every request, so a fast hash keeps requests cheap; the salt defeats precomputed tables.
pub fn password_hash(salt: &str, password: &str) -> String {
    hex::encode(Sha256::digest(format!("{salt}:{password}")))
}

/// A random token of `len` characters from an alphabet without look-alikes.
pub fn random_token(len: usize) -> String {
    use rand::Rng as _;
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect()
}
