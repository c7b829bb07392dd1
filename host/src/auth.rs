//! Who is making a request: the one place credentials are checked, for the REST API and for the
//! format routes plugins serve (uploads through `handle`). Below both the REST API and the content
//! app, which share it; it needs only the database.
//!
//! Accepted, in an `Authorization` header:
//! - `Basic user:password` of an active user;
//! - `Bearer <token>` with an API token (`users/<id>/tokens/`) that is not expired and whose user
//!   is active;
//! - `Basic __token__:<token>`, the convention of twine and uv for API tokens;
//! - `<token>` alone, as cargo sends a registry token;
//! - on the routes plugins serve only ([`Authenticator::authenticate_at`]), `Bearer grr_…`, a
//!   registry token from the token endpoint of container clients (`/token/`): sealed with the
//!   server's key, valid for minutes, granting actions (`pull`, `push`, `delete`) on named
//!   distributions only. The REST API does not accept them.
//!
//! Passwords are stored as argon2id PHC strings ([`hash_password`]). Rows written by Granary
//! before argon2 hold a salted sha256 (`password_salt` + hex digest); they still log in and are
//! rewritten as argon2id at that log-in. argon2 costs tens of milliseconds on purpose, and Basic
//! credentials come with every request of pulp-cli, pip or curl, so an [`Authenticator`] keeps
//! the credentials it has verified, in memory, under a keyed digest tied to the stored hash: a
//! password change (a new stored hash) or a disabled or deleted user (no active row, which every
//! request reads anyway) takes effect on the next request in every process.
//!
//! Failed password log-ins are counted per username and per client address ([`Throttle`]);
//! past the configured number within the window, further attempts get 429 with `Retry-After`
//! without the password being checked. The counts live in each process's memory.

use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use axum::extract::ConnectInfo;
use axum::http::header::AUTHORIZATION;
use axum::http::{Extensions, HeaderMap, StatusCode};
use base64::Engine as _;
use hashlink::LruCache;
use hmac::{Hmac, Mac as _};
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;
use tokio::sync::Semaphore;

use crate::db::{Db, now};
use crate::error::ApiError;

/// The username twine and uv send with an API token as the password.
pub const TOKEN_USERNAME: &str = "__token__";

/// Prefix of every API token, so a leaked one is recognisable (secret scanners, logs).
pub const TOKEN_PREFIX: &str = "grn_";

/// Prefix of a registry token (see the module docs).
pub const REGISTRY_TOKEN_PREFIX: &str = "grr_";

/// What registry tokens are sealed for: nothing else the key seals opens as one.
const REGISTRY_TOKEN_PURPOSE: &str = "granary-registry-token:v1";

/// What a registry token says: whose it is, until when, and which actions it grants at which
/// distributions.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct RegistryClaims {
    /// `users.id` of the user it was issued to; none for an anonymous client.
    pub user: Option<String>,
    /// Unix time, in seconds, after which it is refused.
    pub expires: i64,
    /// Base path of a distribution → the actions granted there.
    pub grants: std::collections::BTreeMap<String, Vec<String>>,
}

/// Users whose verified credentials a process keeps. One entry per user (a user has one
/// password), least recently used first out.
const VERIFIED_CREDENTIALS: usize = 10_000;

/// Usernames and client addresses whose failed log-ins a process counts. Bounded so that a
/// spray of made-up usernames cannot grow memory; the least recently failing go first.
const THROTTLED_KEYS: usize = 100_000;

/// An authenticated user, as handlers see it (a request extension on protected routes).
#[derive(Clone, Debug)]
pub struct User {
    /// `users.id`.
    pub id: String,
    /// Login name.
    pub username: String,
    /// Staff may manage other users.
    pub is_staff: bool,
    /// Set when the request carried a registry token: the actions it grants at the distribution
    /// the request is for, which narrow what the user may do there. `None`: all the user may do.
    pub granted: Option<Vec<String>>,
}

impl User {
    /// Whether the request's credentials allow `action` (`pull`, `push`, `delete`): always, but
    /// for a registry token that does not grant it.
    pub fn credentials_allow(&self, action: &str) -> bool {
        self.granted
            .as_ref()
            .is_none_or(|granted| granted.iter().any(|given| given == action))
    }
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

/// The address of the client that sent a request, when the server recorded it (the listener is
/// served with `ConnectInfo<SocketAddr>`).
pub fn client_address(extensions: &Extensions) -> Option<IpAddr> {
    extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(address)| address.ip())
}

/// How many failed password log-ins are tolerated before further ones are refused for a while.
#[derive(Clone, Copy, Debug)]
pub struct ThrottleSettings {
    /// Failed log-ins of one username per window (0: not limited).
    pub per_user: u32,
    /// Failed log-ins from one client address per window (0: not limited).
    pub per_address: u32,
    /// The window the failures are counted in, and how long a throttled key waits at most.
    pub window: Duration,
}

impl ThrottleSettings {
    /// The failed log-in limits `config` sets.
    pub fn of(config: &crate::config::Config) -> Self {
        ThrottleSettings {
            per_user: config.login_failures_per_user,
            per_address: config.login_failures_per_address,
            window: Duration::from_secs(config.login_failure_window_secs),
        }
    }
}

/// Checks credentials; keeps what it verified and counts what failed (see the module docs).
#[derive(Debug)]
pub struct Authenticator {
    db: Arc<Db>,
    /// Per process, random: a digest kept in the cache is worthless outside this process.
    cache_key: [u8; 32],
    /// `users.id` → keyed digest of (id, stored hash, password) last verified.
    verified: Mutex<LruCache<String, [u8; 32]>>,
    users: Throttle<String>,
    addresses: Throttle<IpAddr>,
    /// argon2 work in flight: each costs its memory (19 MiB) and a core for tens of ms, so a burst
    /// of log-ins queues instead of exhausting memory or the blocking pool.
    hashing: Semaphore,
    /// The server's key, which seals registry tokens; without it none are issued or accepted.
    token_key: Option<Arc<crate::secrets::FieldCipher>>,
}

impl Authenticator {
    /// Checks credentials against `db`, throttling failed log-ins as `throttle` says.
    pub fn new(db: Arc<Db>, throttle: ThrottleSettings) -> Self {
        use rand::RngCore as _;
        let mut cache_key = [0u8; 32];
        rand::rng().fill_bytes(&mut cache_key);
        let cores = std::thread::available_parallelism().map_or(2, usize::from);
        Self {
            db,
            cache_key,
            verified: Mutex::new(LruCache::new(VERIFIED_CREDENTIALS)),
            users: Throttle::new(throttle.per_user, throttle.window),
            addresses: Throttle::new(throttle.per_address, throttle.window),
            hashing: Semaphore::new(cores),
            token_key: None,
        }
    }

    /// Issues and accepts registry tokens sealed with `key`, which every process sharing the
    /// database shares.
    pub fn with_registry_tokens(mut self, key: Arc<crate::secrets::FieldCipher>) -> Self {
        self.token_key = Some(key);
        self
    }

    /// A registry token carrying `claims`; `None` when this server issues none.
    pub fn issue_registry_token(&self, claims: &RegistryClaims) -> Option<String> {
        let key = self.token_key.as_ref()?;
        let text = serde_json::to_string(claims).ok()?;
        Some(format!(
            "{REGISTRY_TOKEN_PREFIX}{}",
            key.seal_for(REGISTRY_TOKEN_PURPOSE, &text)
        ))
    }

    /// The caller of a request to a route a plugin serves at the distribution `base_path`: as
    /// [`Authenticator::authenticate`] says, or the user of a registry token with
    /// [`User::granted`] set to what the token grants there. A registry token that does not open
    /// or has expired is a 401, so that the client fetches a new one.
    pub async fn authenticate_at(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
        base_path: &str,
    ) -> Result<Option<User>, ApiError> {
        let Some(token) = registry_token(headers) else {
            return self.authenticate(headers, client).await;
        };
        let claims = self
            .token_key
            .as_ref()
            .and_then(|key| key.open_for(REGISTRY_TOKEN_PURPOSE, token))
            .and_then(|text| serde_json::from_str::<RegistryClaims>(&text).ok())
            .filter(|claims| claims.expires > chrono::Utc::now().timestamp())
            .ok_or_else(ApiError::unauthorized)?;
        let Some(id) = &claims.user else {
            // An anonymous client's token: it may do what anonymous clients may.
            return Ok(None);
        };
        let mut user = active_user(&self.db, id)
            .await?
            .ok_or_else(ApiError::unauthorized)?;
        user.granted = Some(claims.grants.get(base_path).cloned().unwrap_or_default());
        Ok(Some(user))
    }

    /// Checks the request's credentials (see the module docs) and names the user they belong
    /// to. `client` is the sender's address, counted for failed log-ins. A throttled username
    /// or address gets 429, whatever the password.
    pub async fn authenticate(
        &self,
        headers: &HeaderMap,
        client: Option<IpAddr>,
    ) -> Result<Option<User>, ApiError> {
        let Some(value) = headers
            .get(AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
        else {
            return Ok(None);
        };
        if let Some(token) = strip_scheme(value, "Bearer") {
            return user_for_token(&self.db, token.trim()).await;
        }
        // cargo sends a registry token as the whole header value, without a scheme.
        if value.starts_with(TOKEN_PREFIX) {
            return user_for_token(&self.db, value.trim()).await;
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
            return user_for_token(&self.db, password).await;
        }
        self.log_in(username, password, client).await
    }

    /// A password log-in outside the Authorization header (a format's own log-in, `npm
    /// login`), counted and throttled as a header's is. `client` is the sender's address.
    pub async fn check_password(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<User>, ApiError> {
        self.log_in(username, password, client).await
    }

    /// A password log-in: throttled, answered from the cache when this exact password was
    /// verified against the stored hash before, otherwise verified (and upgraded when legacy).
    async fn log_in(
        &self,
        username: &str,
        password: &str,
        client: Option<IpAddr>,
    ) -> Result<Option<User>, ApiError> {
        let user_key = username.to_owned();
        let wait = [
            self.users.blocked(&user_key),
            client.and_then(|address| self.addresses.blocked(&address)),
        ]
        .into_iter()
        .flatten()
        .max();
        if let Some(wait) = wait {
            return Err(throttled(wait));
        }
        let row = sqlx::query_as::<_, PasswordUserRow>(
            "SELECT id, username, is_staff, password_salt, password_hash FROM users
             WHERE username = $1 AND is_active = 1",
        )
        .bind(username)
        .fetch_optional(&mut *self.db.reader().await?)
        .await?;
        let verified = match &row {
            Some(row) => self.verify(row, password).await?,
            None => {
                self.verify_for_nobody(password).await?;
                false
            }
        };
        let Some(row) = row.filter(|_| verified) else {
            self.users.failed(user_key);
            if let Some(address) = client {
                self.addresses.failed(address);
            }
            return Ok(None);
        };
        self.users.reset(&user_key);
        Ok(Some(row.user.into()))
    }

    /// Spends on an unknown username the argon2 work a known one costs, so the answer's timing
    /// does not tell which usernames exist.
    async fn verify_for_nobody(&self, password: &str) -> Result<(), ApiError> {
        let permit = self.hashing.acquire().await.map_err(ApiError::internal)?;
        let given = password.to_owned();
        tokio::task::spawn_blocking(move || {
            static DECOY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
            let decoy = DECOY.get_or_init(|| hash_blocking(&random_token(24)).unwrap_or_default());
            password_matches("", decoy, &given)
        })
        .await
        .map_err(ApiError::internal)?;
        drop(permit);
        Ok(())
    }

    /// Whether `password` is the one `row` stores a hash of. A legacy hash, or an argon2id one
    /// with other parameters, that matches is replaced with a current one.
    async fn verify(&self, row: &PasswordUserRow, password: &str) -> Result<bool, ApiError> {
        let id = row.user.id.clone().unwrap_or_default();
        let digest = self.credential_digest(&id, &row.password_hash, password);
        if self.is_verified(&id, &digest) {
            return Ok(true);
        }
        let permit = self.hashing.acquire().await.map_err(ApiError::internal)?;
        let (salt, stored, given) = (
            row.password_salt.clone(),
            row.password_hash.clone(),
            password.to_owned(),
        );
        let (matches, upgraded) = tokio::task::spawn_blocking(move || {
            let matches = password_matches(&salt, &stored, &given);
            let upgraded = (matches && !is_current_hash(&stored)).then(|| hash_blocking(&given));
            (matches, upgraded)
        })
        .await
        .map_err(ApiError::internal)?;
        drop(permit);
        if !matches {
            return Ok(false);
        }
        let stored = match upgraded {
            Some(hash) => {
                let hash = hash.map_err(ApiError::internal)?;
                // Only if the row still holds what was verified: a password set meanwhile wins.
                let mut tx = self.db.begin_write().await?;
                sqlx::query(
                    "UPDATE users SET password_salt = '', password_hash = $2
                     WHERE id = $1 AND password_hash = $3",
                )
                .bind(&id)
                .bind(&hash)
                .bind(&row.password_hash)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                tracing::info!(user = %row.user.username, "password hash rewritten with the current argon2id parameters");
                hash
            }
            None => row.password_hash.clone(),
        };
        let digest = self.credential_digest(&id, &stored, password);
        self.verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(id, digest);
        Ok(true)
    }

    /// Whether `digest` is what this process verified last for user `id`.
    fn is_verified(&self, id: &str, digest: &[u8; 32]) -> bool {
        let mut verified = self
            .verified
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        verified
            .get(id)
            .is_some_and(|known| bool::from(known.ct_eq(digest)))
    }

    /// A digest of a password under this process's key, bound to the user and to the hash the
    /// database holds: when the stored hash changes, an entry made before no longer matches.
    fn credential_digest(&self, id: &str, stored_hash: &str, password: &str) -> [u8; 32] {
        let mut mac = <Hmac<Sha256>>::new_from_slice(&self.cache_key).expect("any key length");
        for part in [id, stored_hash, password] {
            mac.update(&(part.len() as u64).to_le_bytes());
            mac.update(part.as_bytes());
        }
        mac.finalize().into_bytes().into()
    }
}

/// 429 for a throttled log-in, saying when to try again.
fn throttled(wait: Duration) -> ApiError {
    let seconds = wait.as_secs().max(1);
    ApiError::detail(
        StatusCode::TOO_MANY_REQUESTS,
        format!("Too many failed log-ins. Try again in {seconds} seconds."),
    )
    .with_retry_after(seconds)
}

/// Failed attempts per key (a username, an address) in fixed windows: past `limit` failures in
/// a window, the key is refused until the window ends.
#[derive(Debug)]
struct Throttle<K: Hash + Eq> {
    limit: u32,
    window: Duration,
    counts: Mutex<LruCache<K, Failures>>,
}

/// Failures of one key since `since`.
#[derive(Debug)]
struct Failures {
    since: Instant,
    count: u32,
}

impl<K: Hash + Eq> Throttle<K> {
    fn new(limit: u32, window: Duration) -> Self {
        Self {
            limit,
            window,
            counts: Mutex::new(LruCache::new(THROTTLED_KEYS)),
        }
    }

    fn counts(&self) -> std::sync::MutexGuard<'_, LruCache<K, Failures>> {
        self.counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// How long `key` must still wait, when it is throttled.
    fn blocked(&self, key: &K) -> Option<Duration> {
        if self.limit == 0 {
            return None;
        }
        let mut counts = self.counts();
        let failures = counts.get(key)?;
        let left = self.window.checked_sub(failures.since.elapsed())?;
        (failures.count >= self.limit).then_some(left)
    }

    fn failed(&self, key: K) {
        if self.limit == 0 {
            return;
        }
        let mut counts = self.counts();
        match counts.get_mut(&key) {
            Some(failures) if failures.since.elapsed() < self.window => failures.count += 1,
            _ => {
                counts.insert(
                    key,
                    Failures {
                        since: Instant::now(),
                        count: 1,
                    },
                );
            }
        }
    }

    fn reset(&self, key: &K) {
        self.counts().remove(key);
    }
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
    /// Empty for argon2id hashes, whose PHC string carries its salt.
    password_salt: String,
    password_hash: String,
}

impl From<UserRow> for User {
    fn from(row: UserRow) -> Self {
        User {
            id: row.id.unwrap_or_default(),
            username: row.username,
            is_staff: row.is_staff != 0,
            granted: None,
        }
    }
}

/// Random characters of an API token's secret after [`TOKEN_PREFIX`] (about 280 bits).
const TOKEN_SECRET_LEN: usize = 48;

/// Issues an API token of user `user_id` named `name`, expiring at `expires` (a stamp) or
/// never; answers its id and its secret, which is stored only as [`token_hash`].
pub async fn issue_api_token(
    db: &Db,
    user_id: &str,
    name: &str,
    expires: Option<String>,
) -> Result<(String, String), sqlx::Error> {
    let secret = format!("{TOKEN_PREFIX}{}", random_token(TOKEN_SECRET_LEN));
    let prefix = secret[..TOKEN_PREFIX.len() + 6].to_owned();
    let token_id = crate::db::new_id();
    db.write_one(
        sqlx::query(
            "INSERT INTO api_tokens (id, user_id, name, prefix, token_hash, expires, created) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&token_id)
        .bind(user_id)
        .bind(name)
        .bind(&prefix)
        .bind(token_hash(&secret))
        .bind(expires)
        .bind(now()),
    )
    .await?;
    Ok((token_id, secret))
}

/// Deletes the API token whose secret is `secret` (a web UI session's end), if it exists.
pub async fn revoke_api_token(db: &Db, secret: &str) -> Result<(), sqlx::Error> {
    db.write_one(
        sqlx::query("DELETE FROM api_tokens WHERE token_hash = $1").bind(token_hash(secret)),
    )
    .await?;
    Ok(())
}

/// The sha256 under which a token's secret is stored and looked up. Tokens are random (about
/// 280 bits), so a fast digest cannot be reversed, and it lets a request find its token by index.
pub fn token_hash(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Whether `headers` carry a registry token (valid or not).
pub fn carries_registry_token(headers: &HeaderMap) -> bool {
    registry_token(headers).is_some()
}

/// The sealed part of the registry token in `headers`, if they carry one.
fn registry_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| strip_scheme(value, "Bearer"))
        .and_then(|token| token.trim().strip_prefix(REGISTRY_TOKEN_PREFIX))
}

/// The active user with `users.id` `id`.
async fn active_user(db: &Db, id: &str) -> Result<Option<User>, ApiError> {
    let row = sqlx::query_as::<_, UserRow>(
        "SELECT id, username, is_staff FROM users WHERE id = $1 AND is_active = 1",
    )
    .bind(id)
    .fetch_optional(db.pool())
    .await?;
    Ok(row.map(User::from))
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

/// The argon2id PHC string (`$argon2id$v=19$m=7168,t=5,p=1$<salt>$<hash>`) to store for a
/// password. Runs on the blocking pool: it takes tens of milliseconds on purpose.
pub async fn hash_password(password: &str) -> anyhow::Result<String> {
    let password = password.to_owned();
    tokio::task::spawn_blocking(move || hash_blocking(&password)).await?
}

/// The argon2id parameters new hashes get: of OWASP's equivalent sets for argon2id, the one with
/// the least memory (7 MiB, five passes, one lane) rather than the `argon2` crate's default
/// (19 MiB, two): every log-in in flight holds that block, and the first one set the server's
/// peak memory.
fn argon2id() -> argon2::Argon2<'static> {
    let params = argon2::Params::new(7 * 1024, 5, 1, None).expect("OWASP's parameters are valid");
    argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params)
}

/// Whether `stored` is an argon2id hash with the parameters new hashes get; any other is
/// rewritten at the next successful log-in.
fn is_current_hash(stored: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(stored) else {
        return false;
    };
    let current = argon2id();
    let current = current.params();
    parsed.algorithm == argon2::Algorithm::Argon2id.ident()
        && argon2::Params::try_from(&parsed).is_ok_and(|params| {
            (params.m_cost(), params.t_cost(), params.p_cost())
                == (current.m_cost(), current.t_cost(), current.p_cost())
        })
}

/// [`hash_password`] on the current thread, with [`argon2id`]'s parameters.
fn hash_blocking(password: &str) -> anyhow::Result<String> {
    use rand::RngCore as _;
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(|error| anyhow::anyhow!("{error}"))?;
    let hash = argon2id()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))?;
    Ok(hash.to_string())
}

/// Whether a stored hash is the salted sha256 of Granary before argon2 (hex, beside a salt).
fn is_legacy_hash(stored: &str) -> bool {
    !stored.starts_with('$')
}

/// Whether `password` matches the stored hash, argon2id or legacy (constant time either way).
fn password_matches(salt: &str, stored: &str, password: &str) -> bool {
    if is_legacy_hash(stored) {
        return legacy_password_hash(salt, password)
            .as_bytes()
            .ct_eq(stored.as_bytes())
            .into();
    }
    // Verified with the parameters the hash records, whatever the current ones are.
    PasswordHash::new(stored).is_ok_and(|parsed| {
        argon2id()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// The salted sha256 Granary stored before argon2id; still verified so that such users can log
/// in once and be upgraded.
pub fn legacy_password_hash(salt: &str, password: &str) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_hash_is_argon2id_and_verifies_only_its_password() {
        let hash = hash_blocking("correct horse").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=7168,t=5,p=1$"), "{hash}");
        assert!(is_current_hash(&hash));
        assert!(!is_legacy_hash(&hash));
        assert!(password_matches("", &hash, "correct horse"));
        assert!(!password_matches("", &hash, "correct horse "));
        assert_ne!(hash, hash_blocking("correct horse").unwrap(), "salted");
    }

    #[test]
    fn a_legacy_salted_sha256_still_verifies() {
        let stored = legacy_password_hash("salt", "secret");
        assert!(is_legacy_hash(&stored));
        assert!(password_matches("salt", &stored, "secret"));
        assert!(!password_matches("salt", &stored, "Secret"));
        assert!(!password_matches("other", &stored, "secret"));
        // The marker of a user without a password matches nothing.
        assert!(!password_matches("", "!", ""));
    }

    /// A database with one user, `old` (id `u1`), whose row stores `salt` and `hash`, and an
    /// authenticator on it that never throttles. The directory holds the database.
    async fn one_user(salt: &str, hash: &str) -> (tempfile::TempDir, Arc<Db>, Authenticator) {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Arc::new(Db::connect(&url).await.unwrap());
        sqlx::query(
            "INSERT INTO users (id, username, password_salt, password_hash, created, is_staff, is_active)
             VALUES ('u1', 'old', $1, $2, $3, 0, 1)",
        )
        .bind(salt)
        .bind(hash)
        .bind(now())
        .execute(db.pool())
        .await
        .unwrap();
        let throttle = ThrottleSettings {
            per_user: 0,
            per_address: 0,
            window: Duration::from_secs(60),
        };
        let auth = Authenticator::new(db.clone(), throttle);
        (dir, db, auth)
    }

    #[tokio::test]
    async fn a_registry_token_opens_until_it_expires_and_only_where_it_grants() {
        let (dir, _db, auth) = one_user("", "!").await;
        let key = crate::secrets::FieldCipher::load_or_create(&dir.path().join("key")).unwrap();
        let auth = auth.with_registry_tokens(Arc::new(key));
        let claims = |expires: i64| RegistryClaims {
            user: Some("u1".into()),
            expires,
            grants: [("team/app".to_owned(), vec!["pull".to_owned()])].into(),
        };
        let headers = |token: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
            headers
        };
        let now = chrono::Utc::now().timestamp();
        let valid = auth.issue_registry_token(&claims(now + 60)).unwrap();
        let user = auth
            .authenticate_at(&headers(&valid), None, "team/app")
            .await
            .unwrap()
            .unwrap();
        assert_eq!(user.username, "old");
        assert!(user.credentials_allow("pull") && !user.credentials_allow("push"));
        let elsewhere = auth
            .authenticate_at(&headers(&valid), None, "team/other")
            .await
            .unwrap()
            .unwrap();
        assert!(!elsewhere.credentials_allow("pull"));
        // Not at the REST API.
        assert!(
            auth.authenticate(&headers(&valid), None)
                .await
                .unwrap()
                .is_none()
        );

        let expired = auth.issue_registry_token(&claims(now - 1)).unwrap();
        let refused = auth
            .authenticate_at(&headers(&expired), None, "team/app")
            .await;
        assert_eq!(refused.unwrap_err().status(), StatusCode::UNAUTHORIZED);
        // What the key seals for storage is no token.
        let sealed = auth
            .token_key
            .as_ref()
            .unwrap()
            .seal(&serde_json::to_string(&claims(now + 60)).unwrap());
        let smuggled = format!(
            "{REGISTRY_TOKEN_PREFIX}{}",
            sealed.trim_start_matches("granary-sealed:v1:")
        );
        let refused = auth
            .authenticate_at(&headers(&smuggled), None, "team/app")
            .await;
        assert_eq!(refused.unwrap_err().status(), StatusCode::UNAUTHORIZED);
    }

    /// The hash user `u1`'s row stores.
    async fn stored_hash(db: &Db) -> String {
        sqlx::query_scalar("SELECT password_hash FROM users WHERE id = 'u1'")
            .fetch_one(db.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn a_legacy_hash_is_upgraded_at_log_in_and_the_cache_follows_the_stored_hash() {
        let (_dir, db, auth) = one_user("salt", &legacy_password_hash("salt", "secret")).await;
        assert!(auth.log_in("old", "wrong", None).await.unwrap().is_none());
        let user = auth.log_in("old", "secret", None).await.unwrap().unwrap();
        assert_eq!(user.id, "u1");
        let stored = stored_hash(&db).await;
        assert!(stored.starts_with("$argon2id$"), "{stored}");
        assert!(auth.log_in("old", "secret", None).await.unwrap().is_some());
        // Another process sets a new password: the cached verification no longer counts.
        sqlx::query("UPDATE users SET password_hash = $1 WHERE id = 'u1'")
            .bind(hash_password("new").await.unwrap())
            .execute(db.pool())
            .await
            .unwrap();
        assert!(auth.log_in("old", "secret", None).await.unwrap().is_none());
        assert!(auth.log_in("old", "new", None).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn a_hash_with_the_old_19_mib_parameters_logs_in_and_is_rewritten() {
        // What Granary stored before: the `argon2` crate's default parameters.
        let salt = SaltString::encode_b64(b"sixteen byte slt").unwrap();
        let old = argon2::Argon2::default()
            .hash_password(b"secret", &salt)
            .unwrap()
            .to_string();
        assert!(old.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{old}");
        assert!(!is_current_hash(&old));
        let (_dir, db, auth) = one_user("", &old).await;
        assert!(auth.log_in("old", "wrong", None).await.unwrap().is_none());
        let stored = stored_hash(&db).await;
        assert_eq!(stored, old, "a failed log-in rewrites nothing");
        assert!(auth.log_in("old", "secret", None).await.unwrap().is_some());
        let stored = stored_hash(&db).await;
        assert!(is_current_hash(&stored), "{stored}");
        assert!(password_matches("", &stored, "secret"));
        assert!(auth.log_in("old", "secret", None).await.unwrap().is_some());
    }

    #[tokio::test]
    async fn an_unknown_username_costs_the_argon2_work_of_a_known_one() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite://{}?mode=rwc", dir.path().join("t.db").display());
        let db = Arc::new(Db::connect(&url).await.unwrap());
        let throttle = ThrottleSettings {
            per_user: 0,
            per_address: 0,
            window: Duration::from_secs(60),
        };
        let auth = Authenticator::new(db, throttle);
        assert!(
            auth.log_in("nobody", "guess", None)
                .await
                .unwrap()
                .is_none()
        );
        // With no argon2 work allowed, the unknown username's log-in cannot answer either: it
        // goes through the same hashing as a known one's.
        auth.hashing.close();
        assert!(auth.log_in("nobody", "guess", None).await.is_err());
    }

    #[test]
    fn a_throttle_blocks_after_its_limit_until_reset() {
        let throttle = Throttle::new(2, Duration::from_secs(60));
        let key = "alice".to_owned();
        throttle.failed(key.clone());
        assert!(throttle.blocked(&key).is_none());
        throttle.failed(key.clone());
        let wait = throttle.blocked(&key).expect("blocked after two failures");
        assert!(wait <= Duration::from_secs(60));
        assert!(throttle.blocked(&"bob".to_owned()).is_none());
        throttle.reset(&key);
        assert!(throttle.blocked(&key).is_none());
    }
}
