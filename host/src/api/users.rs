//! `users/` with Pulp's fields (`password` write-only), and each user's API tokens under
//! `users/<id>/tokens/`.
//!
//! Staff manage every user; a user who is not staff sees only themselves. A user manages their
//! own tokens; staff manage anyone's. A token's secret is answered once, when it is created; only
//! its sha256 is stored (see [`crate::auth`]).

use axum::Json;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::access::{Call, Caller, Nested, Parent};
use super::core_objects;
use super::input::{self, Input};
use super::list::{self, Bind, Conditions, ListRequest, Visibility, fetch_by_id, resource};
use super::routes::Routes;
use super::support::{self, Changes, ColumnValue, Fields};
use crate::auth::{self, TOKEN_USERNAME, User, hash_password};
use crate::db::{WriteTx, new_id, now};
use crate::domain::hrefs;
use crate::error::{ApiError, ApiResult};
use crate::state::App;

/// Routes.
pub fn router() -> Routes {
    Routes::new()
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

/// Stored instead of a hash for a user without a password: neither a hex digest nor an argon2
/// PHC string equals it, so no password logs in.
const UNUSABLE_PASSWORD: &str = "!";

resource! {
    /// A row of `users`.
    pub(crate) struct UserRow in "users" {
        username: String,
        first_name: String,
        last_name: String,
        email: String,
        is_staff: i64,
        is_active: i64,
        created: String,
        password_hash: String,
    }
    filters: text username, text first_name, text last_name, text email, bool is_staff,
        bool is_active, time date_joined = created;
    orderings: username, first_name, last_name, email, date_joined = created, id;
    default_ordering: "username";
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    pulp_href: String,
    prn: String,
    id: String,
    username: String,
    first_name: String,
    last_name: String,
    email: String,
    is_staff: bool,
    is_active: bool,
    #[schema(format = DateTime)]
    date_joined: String,
    groups: [String; 0],
    hidden_fields: [HiddenField; 1],
}

/// A field a response never shows, only whether it is set (Pulp's `hidden_fields`).
#[derive(Debug, Serialize, ToSchema)]
struct HiddenField {
    name: &'static str,
    is_set: bool,
}

impl From<UserRow> for UserView {
    fn from(user: UserRow) -> Self {
        UserView {
            pulp_href: hrefs::user(&user.id),
            prn: format!("prn:auth.user:{}", user.id),
            id: user.id,
            username: user.username,
            first_name: user.first_name,
            last_name: user.last_name,
            email: user.email,
            is_staff: user.is_staff != 0,
            is_active: user.is_active != 0,
            date_joined: user.created,
            groups: [],
            hidden_fields: [HiddenField {
                name: "password",
                is_set: user.password_hash != UNUSABLE_PASSWORD,
            }],
        }
    }
}

fn require_staff(user: &User) -> ApiResult<()> {
    if user.is_staff {
        Ok(())
    } else {
        Err(ApiError::forbidden())
    }
}

/// The users a caller may see: staff see everyone, anyone else only themselves.
fn visible_to(caller: &User) -> Visibility {
    if caller.is_staff {
        Visibility::all()
    } else {
        Visibility::only(Conditions::of("id = ?", [Bind::from(caller.id.as_str())]))
    }
}

async fn list(Call { app, caller }: Call, request: ListRequest) -> ApiResult<Response> {
    list::list::<UserRow, _>(
        &app,
        &request,
        Conditions::new(),
        &visible_to(&caller.user),
        UserView::from,
    )
    .await
}

/// The user `id`, when the caller may see it (staff, or the user themselves); 404 otherwise, so
/// a user cannot probe for others' ids.
async fn visible(app: &App, caller: &User, id: &str) -> ApiResult<UserRow> {
    fetch_by_id(&app.db, id, Conditions::new(), &visible_to(caller)).await
}

async fn load(app: &App, id: &str) -> ApiResult<UserView> {
    let user: UserRow = fetch_by_id(&app.db, id, Conditions::new(), &Visibility::all()).await?;
    Ok(UserView::from(user))
}

async fn read(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<Json<Value>> {
    Ok(list::json(&UserView::from(
        visible(&app, &caller.user, &id).await?,
    )))
}

/// A user's writable fields, as a create or an update gives them.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct UserInput {
    /// Letters, digits and `@.+-_`, 150 at most.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    username: Option<String>,
    /// Null removes the password: no password logs in.
    #[serde(default, deserialize_with = "input::nullable")]
    #[schema(value_type = Option<String>, write_only)]
    password: Option<Option<String>>,
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    first_name: Option<String>,
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    last_name: Option<String>,
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    email: Option<String>,
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = bool)]
    is_staff: Option<bool>,
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = bool)]
    is_active: Option<bool>,
}

impl Input for UserInput {
    const REQUIRED: &'static [&'static str] = &["username"];
}

/// The input's checks on its typed values.
fn user_fields(fields: &Fields) -> ApiResult<UserInput> {
    let input: UserInput = fields.parse()?;
    if let Some(name) = &input.username {
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
    }
    if let Some(Some(password)) = &input.password {
        refuse_weak_password(password)?;
    }
    if let Some(email) = &input.email
        && !email.is_empty()
        && !email.contains('@')
    {
        return Err(ApiError::field("email", "Enter a valid email address."));
    }
    Ok(input)
}

/// The shortest password a user may be given: Django's `MinimumLengthValidator`, which Pulp's
/// settings enable.
const MIN_PASSWORD_CHARS: usize = 8;

/// Refuses a password Pulp's password validators refuse for its length or for being all digits,
/// in their words (on the field, where Pulp answers `non_field_errors`).
fn refuse_weak_password(password: &str) -> ApiResult<()> {
    if password.is_empty() {
        return Err(ApiError::field("password", "This field may not be blank."));
    }
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(ApiError::field(
            "password",
            format!(
                "This password is too short. It must contain at least {MIN_PASSWORD_CHARS} characters."
            ),
        ));
    }
    if password.chars().all(|c| c.is_ascii_digit()) {
        return Err(ApiError::field(
            "password",
            "This password is entirely numeric.",
        ));
    }
    Ok(())
}

/// `(salt, hash)` to store for a password, or for none. argon2id hashes carry their salt, so
/// the salt column is empty (it is for the salted sha256 of older rows).
async fn password_columns(password: Option<&str>) -> ApiResult<(String, String)> {
    Ok(match password {
        Some(password) => (String::new(), hash_password(password).await?),
        None => (String::new(), UNUSABLE_PASSWORD.to_owned()),
    })
}

/// Refuses (400) a username another user than `id` (the one created or changed) has.
async fn ensure_username_free(tx: &mut WriteTx, username: &str, id: &str) -> ApiResult<()> {
    let message = "A user with that username already exists.";
    support::ensure_free(tx, "users", "username", username, id, message).await
}

async fn create(Call { app, caller }: Call, fields: Fields) -> ApiResult<Response> {
    require_staff(&caller.user)?;
    let values = user_fields(&fields)?;
    let username = values
        .username
        .clone()
        .ok_or_else(|| ApiError::field("username", "This field is required."))?;
    let (salt, hash) = password_columns(values.password.flatten().as_deref()).await?;
    let id = new_id();
    let mut tx = app.db.begin_write().await?;
    ensure_username_free(&mut tx, &username, &id).await?;
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
    Ok((StatusCode::CREATED, list::json(&load(&app, &id).await?)).into_response())
}

async fn update(
    Call { app, caller }: Call,
    Path(id): Path<String>,
    fields: Fields,
) -> ApiResult<Json<Value>> {
    require_staff(&caller.user)?;
    let id = visible(&app, &caller.user, &id).await?.id;
    let values = user_fields(&fields)?;
    let mut tx = app.db.begin_write().await?;
    if let Some(username) = &values.username {
        ensure_username_free(&mut tx, username, &id).await?;
    }
    let texts = [
        ("username", values.username),
        ("first_name", values.first_name),
        ("last_name", values.last_name),
        ("email", values.email),
    ]
    .map(|(column, value)| Some((column.to_owned(), ColumnValue::Text(Some(value?)))));
    let flags = [
        ("is_staff", values.is_staff),
        ("is_active", values.is_active),
    ]
    .map(|(column, value)| Some((column.to_owned(), ColumnValue::Int(Some(value?.into())))));
    let changes: Changes = texts.into_iter().chain(flags).flatten().collect();
    support::set_columns(&mut tx, "users", &id, &changes).await?;
    if let Some(password) = values.password {
        let (salt, hash) = password_columns(password.as_deref()).await?;
        sqlx::query("UPDATE users SET password_salt = $2, password_hash = $3 WHERE id = $1")
            .bind(&id)
            .bind(salt)
            .bind(hash)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(list::json(&load(&app, &id).await?))
}

async fn destroy(Call { app, caller }: Call, Path(id): Path<String>) -> ApiResult<StatusCode> {
    require_staff(&caller.user)?;
    let id = visible(&app, &caller.user, &id).await?.id;
    core_objects::delete_rows(&app, &id, &[("api_tokens", "user_id"), ("users", "id")]).await?;
    // A later user must not inherit the roles and groups of this one.
    crate::rbac::forget_user(&app.db, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

resource! {
    /// A row of `api_tokens` (its hash stays in the table).
    pub(crate) struct Token in "api_tokens" {
        user_id: String,
        name: String,
        prefix: String,
        expires: Option<String>,
        created: String,
    }
    filters: text name, text prefix, time expires_at = expires, time pulp_created = created;
    orderings: pulp_created = created, name, expires_at = expires;
    default_ordering: "pulp_created";
}

/// An API token as the API shows it; `token` (the secret) only in the answer to its creation.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    pulp_href: String,
    user: String,
    name: String,
    prefix: String,
    #[schema(format = DateTime)]
    expires_at: Option<String>,
    #[schema(format = DateTime)]
    pulp_created: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    token: Option<String>,
}

impl From<Token> for TokenView {
    fn from(token: Token) -> Self {
        TokenView {
            pulp_href: hrefs::user_token(&token.user_id, &token.id),
            user: hrefs::user(&token.user_id),
            name: token.name,
            prefix: token.prefix,
            expires_at: token.expires,
            pulp_created: token.created,
            token: None,
        }
    }
}

fn owned_by(owner: &str) -> Conditions {
    Conditions::of("user_id = ?", [Bind::from(owner)])
}

/// The user whose tokens a `users/<id>/tokens/` route lists or changes: one the caller may
/// see (themselves, or anyone for staff).
struct TokenOwner(String);

impl Parent for TokenOwner {
    async fn locate(app: &App, caller: &Caller, id: &str, _: &Method) -> ApiResult<TokenOwner> {
        Ok(TokenOwner(visible(app, &caller.user, id).await?.id))
    }
}

impl TokenOwner {
    /// Their token `id`; 404 when they have none of that id.
    async fn token(&self, app: &App, id: &str) -> ApiResult<Token> {
        fetch_by_id(&app.db, id, owned_by(&self.0), &Visibility::all()).await
    }
}

async fn list_tokens(
    Nested { app, parent }: Nested<TokenOwner>,
    request: ListRequest,
) -> ApiResult<Response> {
    list::list_all::<Token, TokenView>(&app, &request, owned_by(&parent.0)).await
}

/// A token's writable fields.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct TokenInput {
    /// For its owner to tell tokens apart; 255 characters at most.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = String)]
    name: Option<String>,
    /// When it stops working (RFC 3339); none: never.
    #[serde(default, deserialize_with = "input::optional")]
    #[schema(value_type = Option<String>, format = DateTime)]
    expires_at: Option<String>,
}

impl Input for TokenInput {
    const REQUIRED: &'static [&'static str] = &[];
}

/// `POST {name?, expires_at?}`: answers 201 with the token's `token` secret, the only time it is
/// shown.
async fn create_token(
    Nested { app, parent }: Nested<TokenOwner>,
    fields: Fields,
) -> ApiResult<Response> {
    let TokenOwner(owner) = &parent;
    let input: TokenInput = fields.parse()?;
    let name = input.name.unwrap_or_default();
    if name.len() > 255 {
        return Err(ApiError::field(
            "name",
            "Ensure this field has no more than 255 characters.",
        ));
    }
    let expires = match input.expires_at {
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
            Some(crate::db::stamp(at))
        }
    };
    let (token_id, secret) = auth::issue_api_token(&app.db, owner, &name, expires).await?;
    let token = parent.token(&app, &token_id).await?;
    let view = TokenView {
        token: Some(secret),
        ..TokenView::from(token)
    };
    Ok((StatusCode::CREATED, list::json(&view)).into_response())
}

async fn read_token(
    Nested { app, parent }: Nested<TokenOwner>,
    Path((_, token)): Path<(String, String)>,
) -> ApiResult<Json<Value>> {
    let token = parent.token(&app, &token).await?;
    Ok(list::json(&TokenView::from(token)))
}

/// Revokes a token: the next request carrying it is refused.
async fn destroy_token(
    Nested { app, parent }: Nested<TokenOwner>,
    Path((_, token)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    let token_id = parent.token(&app, &token).await?.id;
    app.db
        .write_one(sqlx::query("DELETE FROM api_tokens WHERE id = $1").bind(&token_id))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}
