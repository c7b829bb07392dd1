//! Secrets at rest: the fields that carry credentials (a remote's `password`, `proxy_password`,
//! `client_key` and `headers`) are stored encrypted, with a key kept outside the database, as
//! Pulp does with its `DB_ENCRYPTION_KEY` file. A stolen database dump, backup or replica then
//! gives away no upstream credentials.
//!
//! The key is 32 random bytes, hex-encoded in a file that only the server's user may read
//! (created at first start when missing). Values are sealed with ChaCha20-Poly1305 under a fresh
//! random nonce each (from `ring`, which TLS already builds in), and stored as
//! `granary-sealed:v1:<base64 of nonce ‖ ciphertext ‖ tag>`. Values without that prefix were
//! written before encryption existed: they read as they are and are sealed on start-up.
//!
//! Every process that shares a database must share the key: the database keeps a fingerprint of
//! it (a digest of the key, not the key), and a process with another key refuses to start rather
//! than fail every download later.

use std::path::Path;

use base64::Engine as _;
use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::rand::{SecureRandom as _, SystemRandom};
use sha2::{Digest as _, Sha256};

use crate::db::Db;

/// What a sealed value starts with.
const SEALED_PREFIX: &str = "granary-sealed:v1:";

/// Bytes of a key.
const KEY_LEN: usize = 32;

/// Why a secret could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file is missing and cannot be created, unreadable, or not a key.
    #[error("database encryption key {path}: {reason}")]
    Key {
        /// The key file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// A sealed value did not open: another key sealed it, or it was changed.
    #[error(
        "a stored secret cannot be decrypted with this server's database encryption key (was it sealed with another key?)"
    )]
    Undecryptable,
}

/// Seals and opens stored secrets with the server's key.
pub struct FieldCipher {
    key: LessSafeKey,
    fingerprint: String,
}

impl std::fmt::Debug for FieldCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key.
        f.debug_struct("FieldCipher")
            .field("fingerprint", &self.fingerprint)
            .finish()
    }
}

impl FieldCipher {
    /// The cipher of the key in `path`, creating the file (readable by its owner only) with a new
    /// random key when there is none.
    pub fn load_or_create(path: &Path) -> Result<FieldCipher, SecretError> {
        let error = |reason: String| SecretError::Key {
            path: path.display().to_string(),
            reason,
        };
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {
                let mut key = [0u8; KEY_LEN];
                SystemRandom::new()
                    .fill(&mut key)
                    .map_err(|_| error("no randomness for a new key".into()))?;
                match write_private(path, &hex::encode(key)) {
                    Ok(()) => hex::encode(key),
                    // Another process sharing the file created it first: its key it is.
                    Err(io) if io.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::fs::read_to_string(path)
                            .map_err(|io| error(format!("cannot read it: {io}")))?
                    }
                    Err(io) => return Err(error(format!("cannot create it: {io}"))),
                }
            }
            Err(io) => return Err(error(format!("cannot read it: {io}"))),
        };
        let bytes = hex::decode(text.trim())
            .ok()
            .filter(|bytes| bytes.len() == KEY_LEN)
            .ok_or_else(|| error(format!("it must hold {KEY_LEN} bytes as hex")))?;
        FieldCipher::from_key(&bytes).ok_or_else(|| error("not a usable key".into()))
    }

    /// The cipher of a raw key.
    fn from_key(bytes: &[u8]) -> Option<FieldCipher> {
        let key = LessSafeKey::new(UnboundKey::new(&CHACHA20_POLY1305, bytes).ok()?);
        // A digest under a label, so the fingerprint is no shortcut to the key.
        let fingerprint = hex::encode(Sha256::digest(
            [b"granary-key-fingerprint:", bytes].concat(),
        ));
        Some(FieldCipher { key, fingerprint })
    }

    /// A digest that tells keys apart without revealing them.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// `plain` sealed for storage.
    pub fn seal(&self, plain: &str) -> String {
        format!("{SEALED_PREFIX}{}", self.seal_for(SEALED_PREFIX, plain))
    }

    /// The plain text of a stored value: opened when sealed, as it is when written before
    /// encryption existed.
    pub fn open(&self, stored: &str) -> Result<String, SecretError> {
        match stored.strip_prefix(SEALED_PREFIX) {
            Some(encoded) => self
                .open_for(SEALED_PREFIX, encoded)
                .ok_or(SecretError::Undecryptable),
            None => Ok(stored.to_owned()),
        }
    }

    /// `plain` sealed for `purpose` (base64): it opens only with [`FieldCipher::open_for`] and
    /// the same purpose, so a value sealed for one use (a stored password) is never accepted
    /// for another (a token).
    pub fn seal_for(&self, purpose: &str, plain: &str) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        // The system's randomness does not fail on the platforms the server runs on; a zero
        // nonce would still be sealed, just not unique, so refuse instead.
        SystemRandom::new()
            .fill(&mut nonce)
            .expect("the system provides randomness");
        let mut sealed = plain.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(purpose),
                &mut sealed,
            )
            .expect("a secret is far below the AEAD's length limit");
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        base64::engine::general_purpose::STANDARD.encode(stored)
    }

    /// The plain text `encoded` was sealed from for `purpose`; `None` when it was not sealed by
    /// this key for this purpose, or was changed.
    pub fn open_for(&self, purpose: &str, encoded: &str) -> Option<String> {
        let mut bytes = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        if bytes.len() < NONCE_LEN + CHACHA20_POLY1305.tag_len() {
            return None;
        }
        let mut ciphertext = bytes.split_off(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(&bytes).ok()?;
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(purpose), &mut ciphertext)
            .ok()?;
        String::from_utf8(plain.to_vec()).ok()
    }

    /// Whether `stored` is sealed (not a value written before encryption existed).
    pub fn is_sealed(stored: &str) -> bool {
        stored.starts_with(SEALED_PREFIX)
    }
}

/// The columns of `remotes` that hold secrets.
pub const REMOTE_SECRET_COLUMNS: [&str; 4] =
    ["password", "proxy_password", "client_key", "headers"];

/// Name of the fingerprint in `server_settings`.
const FINGERPRINT_SETTING: &str = "db_encryption_key_fingerprint";

/// The cipher of the key at `path` for `db`: the key must be the one the database's secrets are
/// sealed with (its fingerprint is recorded by the first process that starts); secrets stored
/// before encryption existed are sealed now.
pub async fn for_database(db: &Db, path: &Path) -> anyhow::Result<FieldCipher> {
    let cipher = FieldCipher::load_or_create(path)?;
    db.write_one(
        sqlx::query("INSERT INTO server_settings (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(FINGERPRINT_SETTING)
            .bind(cipher.fingerprint()),
    )
    .await?;
    let recorded: String = sqlx::query_scalar("SELECT value FROM server_settings WHERE name = $1")
        .bind(FINGERPRINT_SETTING)
        .fetch_one(db.pool())
        .await?;
    anyhow::ensure!(
        recorded == cipher.fingerprint(),
        "the database encryption key {} is not the key this database's secrets are sealed with \
         (every process sharing a database needs the same key file: set --db-encryption-key)",
        path.display()
    );
    seal_plain_remote_secrets(db, &cipher).await?;
    Ok(cipher)
}

/// Seals the remote secrets written before encryption existed.
async fn seal_plain_remote_secrets(db: &Db, cipher: &FieldCipher) -> Result<(), sqlx::Error> {
    for column in REMOTE_SECRET_COLUMNS {
        let plain: Vec<(String, String)> = sqlx::query_as(&format!(
            "SELECT id, {column} FROM remotes WHERE {column} IS NOT NULL AND {column} NOT LIKE 'granary-sealed:%'"
        ))
        .fetch_all(db.pool())
        .await?;
        for (id, value) in plain {
            db.write_one(
                sqlx::query(&format!("UPDATE remotes SET {column} = $2 WHERE id = $1"))
                    .bind(id)
                    .bind(cipher.seal(&value)),
            )
            .await?;
        }
    }
    Ok(())
}

/// Writes `text` to a new file at `path` that only its owner may read.
fn write_private(path: &Path, text: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    options.open(path)?.write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cipher() -> (tempfile::TempDir, FieldCipher) {
        let dir = tempfile::tempdir().unwrap();
        let cipher = FieldCipher::load_or_create(&dir.path().join("key")).unwrap();
        (dir, cipher)
    }

    #[test]
    fn a_sealed_secret_opens_to_itself_and_shows_nothing_of_it() {
        let (_dir, cipher) = cipher();
        let sealed = cipher.seal("hunter2");
        assert!(FieldCipher::is_sealed(&sealed));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(
            sealed,
            cipher.seal("hunter2"),
            "each seal has its own nonce"
        );
        assert_eq!(cipher.open(&sealed).unwrap(), "hunter2");
    }

    #[test]
    fn a_value_from_before_encryption_reads_as_it_is() {
        let (_dir, cipher) = cipher();
        assert_eq!(cipher.open("plain").unwrap(), "plain");
    }

    #[test]
    fn another_key_or_a_changed_value_does_not_open() {
        let (_dir, cipher) = cipher();
        let (_other_dir, other) = self::cipher();
        let sealed = cipher.seal("secret");
        assert!(matches!(
            other.open(&sealed),
            Err(SecretError::Undecryptable)
        ));
        assert_ne!(cipher.fingerprint(), other.fingerprint());
        let mut changed = sealed.clone();
        changed.pop();
        changed.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert!(cipher.open(&changed).is_err());
    }

    #[test]
    fn the_key_file_is_kept_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key");
        let first = FieldCipher::load_or_create(&path).unwrap();
        let again = FieldCipher::load_or_create(&path).unwrap();
        assert_eq!(first.fingerprint(), again.fingerprint());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "only the owner may read the key");
        }
        std::fs::write(&path, "not hex").unwrap();
        assert!(FieldCipher::load_or_create(&path).is_err());
    }
}
