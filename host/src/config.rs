//! Server configuration: one struct, every field a flag and an environment variable.

use std::net::SocketAddr;
use std::path::PathBuf;

/// How a Granary process is configured. The defaults run embedded: SQLite and artifacts in
/// `--data-dir`, tasks run by workers inside `serve`.
#[derive(clap::Args, Clone, Debug)]
pub struct Config {
    /// Address the REST API and the content app listen on (port 0 picks a free port).
    #[arg(long, env = "GRANARY_BIND", default_value = "127.0.0.1:24817")]
    pub bind: SocketAddr,

    /// Directory for the SQLite database, stored artifacts, compiled plugins and temporary files.
    #[arg(long, env = "GRANARY_DATA_DIR", default_value = "./granary-data")]
    pub data_dir: PathBuf,

    /// File holding the key that encrypts stored credentials (remote passwords, client keys,
    /// headers), created with a new random key when missing. Every process sharing a database
    /// must use the same key. Default: `<data-dir>/db_encryption.key`.
    #[arg(long, env = "GRANARY_DB_ENCRYPTION_KEY")]
    pub db_encryption_key: Option<PathBuf>,

    /// Database URL: `sqlite://PATH` or `postgres://USER@HOST:PORT/DB`.
    /// Default: SQLite in `<data-dir>/granary.db`.
    #[arg(long, env = "GRANARY_DATABASE_URL")]
    pub database_url: Option<String>,

    /// Password of the `admin` user. When unset, one is generated at first start, printed once and
    /// kept (hashed) in the database.
    #[arg(long, env = "GRANARY_ADMIN_PASSWORD", hide_env_values = true)]
    pub admin_password: Option<String>,

    /// Number of task workers this process runs (0: this process runs no tasks).
    #[arg(long, env = "GRANARY_WORKERS", default_value_t = 2)]
    pub workers: usize,

    /// Origin used in absolute URLs (`base_url` of distributions), e.g. `https://repo.example.com`.
    /// Default: `http://<bind address>`.
    #[arg(long, env = "GRANARY_CONTENT_ORIGIN")]
    pub content_origin: Option<String>,

    /// Directory of extra plugin components (`*.wasm`) loaded at start, beside the built-in ones.
    #[arg(long, env = "GRANARY_PLUGIN_DIR")]
    pub plugin_dir: Option<PathBuf>,

    /// Directory of the compiled-plugin cache: each component's machine code for this host, keyed
    /// by the component's digest and the compiler's settings, so that a restart or another process
    /// sharing the directory skips compiling it again. Default: `<data-dir>/plugin-cache`.
    #[arg(long, env = "GRANARY_PLUGIN_CACHE_DIR")]
    pub plugin_cache_dir: Option<PathBuf>,

    /// CPU time one plugin call may use, in milliseconds, before it is stopped.
    #[arg(long, env = "GRANARY_PLUGIN_CPU_LIMIT_MS", default_value_t = 300_000)]
    pub plugin_cpu_limit_ms: u64,

    /// Linear memory one plugin instance may use, in MiB.
    #[arg(long, env = "GRANARY_PLUGIN_MEMORY_LIMIT_MB", default_value_t = 256)]
    pub plugin_memory_limit_mb: u64,

    /// Bytes one plugin call may write into a publication, or hand the host in total as bodies.
    #[arg(long, env = "GRANARY_PLUGIN_MAX_OUTPUT_BYTES", default_value_t = 1 << 30)]
    pub plugin_max_output_bytes: u64,

    /// Largest plugin component (`.wasm`) `POST /pulp/api/v3/plugins/` accepts, in bytes.
    #[arg(long, env = "GRANARY_PLUGIN_MAX_BYTES", default_value_t = 64 << 20)]
    pub plugin_max_bytes: u64,

    /// S3 bucket for artifacts. When set, artifacts live in S3-compatible object storage instead
    /// of `<data-dir>/artifacts` (needed when several processes share one database).
    #[arg(long, env = "GRANARY_S3_BUCKET")]
    pub s3_bucket: Option<String>,

    /// Endpoint of an S3-compatible server (MinIO, Ceph, ...), e.g. `http://127.0.0.1:9000`.
    /// Default: AWS.
    #[arg(long, env = "GRANARY_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,

    /// S3 region.
    #[arg(long, env = "GRANARY_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,

    /// S3 access key id (default: the standard `AWS_ACCESS_KEY_ID`).
    #[arg(long, env = "GRANARY_S3_ACCESS_KEY_ID")]
    pub s3_access_key_id: Option<String>,

    /// S3 secret access key (default: the standard `AWS_SECRET_ACCESS_KEY`).
    #[arg(long, env = "GRANARY_S3_SECRET_ACCESS_KEY", hide_env_values = true)]
    pub s3_secret_access_key: Option<String>,

    /// Answer content requests for stored artifacts with a redirect to a presigned S3 URL
    /// instead of streaming the bytes through Granary.
    #[arg(long, env = "GRANARY_S3_PRESIGNED_REDIRECTS", default_value_t = false)]
    pub s3_presigned_redirects: bool,

    /// Memory the content app may use to keep small stored files (up to 64 KiB each), in MiB;
    /// the least recently served go first. 0 reads every request from storage.
    #[arg(long, env = "GRANARY_CONTENT_MEMORY_CACHE_MB", default_value_t = 16)]
    pub content_memory_cache_mb: usize,

    /// Plugin calls (`handle`) the content app runs at once, over all distributions and clients.
    /// Each holds one plugin instance for as long as it runs (a slow upstream included), so this
    /// plus `--workers` stays below the instance pool (256); requests over it wait for a turn
    /// and get 503 with `Retry-After` after `--content-queue-timeout-ms`.
    #[arg(long, env = "GRANARY_CONTENT_PLUGIN_CALLS", default_value_t = 128)]
    pub content_plugin_calls: usize,

    /// Upstream fetches (pull-through and on-demand files) the content app runs at once.
    #[arg(long, env = "GRANARY_CONTENT_UPSTREAM_FETCHES", default_value_t = 128)]
    pub content_upstream_fetches: usize,

    /// Of the plugin calls, and of the upstream fetches, how many one distribution may have at
    /// once, so one distribution with a hanging upstream leaves turns for the others.
    #[arg(long, env = "GRANARY_CONTENT_PER_DISTRIBUTION", default_value_t = 64)]
    pub content_per_distribution: usize,

    /// Of the plugin calls, and of the upstream fetches, how many one client address (an IPv6
    /// client: its /64) may have at once. Behind a reverse proxy every client has the proxy's
    /// address: raise it to `--content-per-distribution` there.
    #[arg(long, env = "GRANARY_CONTENT_PER_CLIENT", default_value_t = 16)]
    pub content_per_client: usize,

    /// How long a content request waits for a turn (a plugin call or an upstream fetch) before
    /// it is answered 503 with `Retry-After`, in milliseconds.
    #[arg(
        long,
        env = "GRANARY_CONTENT_QUEUE_TIMEOUT_MS",
        default_value_t = 10_000
    )]
    pub content_queue_timeout_ms: u64,

    /// Timeouts, in seconds, of remotes that leave theirs null: Pulp's defaults (its download
    /// factory falls back to aiohttp's `ClientTimeout(total=300, sock_connect=30)`). 0 means no
    /// limit. `total_timeout` covers a whole request, its body included.
    #[arg(long, env = "GRANARY_REMOTE_TOTAL_TIMEOUT", default_value_t = 300.0)]
    pub remote_total_timeout: f64,

    /// Default `sock_connect_timeout` of remotes, in seconds (see `--remote-total-timeout`).
    #[arg(
        long,
        env = "GRANARY_REMOTE_SOCK_CONNECT_TIMEOUT",
        default_value_t = 30.0
    )]
    pub remote_sock_connect_timeout: f64,

    /// Default `connect_timeout` of remotes, in seconds; none unless set, as in Pulp.
    #[arg(long, env = "GRANARY_REMOTE_CONNECT_TIMEOUT")]
    pub remote_connect_timeout: Option<f64>,

    /// Default `sock_read_timeout` of remotes (the longest wait for the next bytes), in seconds;
    /// none unless set, as in Pulp.
    #[arg(long, env = "GRANARY_REMOTE_SOCK_READ_TIMEOUT")]
    pub remote_sock_read_timeout: Option<f64>,

    /// Failed password log-ins of one username per window before further attempts get 429
    /// (0: not limited). Counted in each process's memory.
    #[arg(long, env = "GRANARY_LOGIN_FAILURES_PER_USER", default_value_t = 10)]
    pub login_failures_per_user: u32,

    /// Failed password log-ins from one client address per window before further attempts get
    /// 429 (0: not limited). Counted in each process's memory.
    #[arg(long, env = "GRANARY_LOGIN_FAILURES_PER_ADDRESS", default_value_t = 50)]
    pub login_failures_per_address: u32,

    /// The window failed log-ins are counted in, in seconds; a throttled username or address
    /// waits until its window ends.
    #[arg(long, env = "GRANARY_LOGIN_FAILURE_WINDOW_SECS", default_value_t = 60)]
    pub login_failure_window_secs: u64,

    /// Memory the content app may use to remember which distribution and published file a
    /// request path resolved to, keys and values together, in KiB; the least recently used go
    /// first. Paths that resolve to nothing are never kept.
    #[arg(long, env = "GRANARY_CONTENT_RESOLUTION_CACHE_KB", default_value_t = 8 * 1024)]
    pub content_resolution_cache_kb: usize,

    /// Bytes of plugin answers (index pages, resolved downloads) the content app keeps per
    /// `serve` process, in KiB. Kept only where the plugin allows it, for as long as the
    /// distribution serves the version they were made for. The default holds a python index of
    /// 10,000 projects whole, a page and a wheel of each (`docs/performance.md`, #20).
    #[arg(long, env = "GRANARY_CONTENT_ANSWER_CACHE_KB", default_value_t = 32 * 1024)]
    pub content_answer_cache_kb: usize,

    /// Seconds a client has to send a request's headers once its connection waits for one (also
    /// how long an idle keep-alive connection stays open: the timer starts when the connection
    /// starts waiting for its next request).
    #[arg(long, env = "GRANARY_HEADER_READ_TIMEOUT_SECS", default_value_t = 30)]
    pub header_read_timeout_secs: u64,

    /// Seconds a request body may go without a byte arriving before the request is cut off.
    #[arg(long, env = "GRANARY_REQUEST_BODY_TIMEOUT_SECS", default_value_t = 60)]
    pub request_body_timeout_secs: u64,

    /// Longest request URL (path and query), in bytes; a longer one is answered 414.
    #[arg(long, env = "GRANARY_MAX_URL_BYTES", default_value_t = 8 * 1024)]
    pub max_url_bytes: usize,

    /// Most segments of a request path; a deeper one is answered 414.
    #[arg(long, env = "GRANARY_MAX_PATH_SEGMENTS", default_value_t = 64)]
    pub max_path_segments: usize,

    /// Largest upload, in bytes: a chunked upload's declared size, a file part of a form, a
    /// request body. Larger ones are answered 413.
    #[arg(long, env = "GRANARY_MAX_UPLOAD_BYTES", default_value_t = 10 << 30)]
    pub max_upload_bytes: u64,

    /// Seconds a plugin's upload session (an OCI chunked blob upload) lives without an append;
    /// an expired one is gone, with its bytes.
    #[arg(long, env = "GRANARY_UPLOAD_SESSION_TTL_SECS", default_value_t = 24 * 3600)]
    pub upload_session_ttl_secs: u64,

    /// Directories exporters may write below (Pulp's `ALLOWED_EXPORT_PATHS`), comma-separated.
    /// None by default: every export is refused until an operator names a directory.
    #[arg(long, env = "GRANARY_ALLOWED_EXPORT_PATHS", value_delimiter = ',')]
    pub allowed_export_paths: Vec<PathBuf>,

    /// Directories imports may read below (Pulp's `ALLOWED_IMPORT_PATHS`), comma-separated.
    /// None by default.
    #[arg(long, env = "GRANARY_ALLOWED_IMPORT_PATHS", value_delimiter = ',')]
    pub allowed_import_paths: Vec<PathBuf>,
}

/// Plugin instances kept free of content-app calls for the rest of a process: installs, REST
/// schema checks, parse-upload and publish run outside the workers' count.
const INSTANCES_KEPT_FREE: usize = 16;

impl Config {
    /// Refuses content-app limits that could exhaust a plugin instance pool of `pool_size` or
    /// that contradict each other, naming the settings to change.
    pub fn check_content_limits(&self, pool_size: usize) -> anyhow::Result<()> {
        let calls = self.content_plugin_calls;
        anyhow::ensure!(
            calls > 0 && self.content_upstream_fetches > 0,
            "--content-plugin-calls and --content-upstream-fetches must be at least 1"
        );
        anyhow::ensure!(
            calls + self.workers + INSTANCES_KEPT_FREE <= pool_size,
            "--content-plugin-calls ({calls}) plus --workers ({}) plus {INSTANCES_KEPT_FREE} kept \
             free must not exceed the plugin instance pool ({pool_size})",
            self.workers
        );
        let per_distribution = self.content_per_distribution;
        let most = calls.min(self.content_upstream_fetches);
        anyhow::ensure!(
            (1..=most).contains(&per_distribution),
            "--content-per-distribution ({per_distribution}) must be between 1 and the smaller of \
             --content-plugin-calls and --content-upstream-fetches ({most})"
        );
        anyhow::ensure!(
            (1..=per_distribution).contains(&self.content_per_client),
            "--content-per-client ({}) must be between 1 and --content-per-distribution \
             ({per_distribution})",
            self.content_per_client
        );
        for (flag, seconds) in [
            ("--remote-total-timeout", Some(self.remote_total_timeout)),
            (
                "--remote-sock-connect-timeout",
                Some(self.remote_sock_connect_timeout),
            ),
            ("--remote-connect-timeout", self.remote_connect_timeout),
            ("--remote-sock-read-timeout", self.remote_sock_read_timeout),
        ] {
            if let Some(seconds) = seconds {
                anyhow::ensure!(
                    seconds.is_finite() && seconds >= 0.0,
                    "{flag} must be a number of seconds, 0 or more (got {seconds})"
                );
            }
        }
        Ok(())
    }

    /// A default remote timeout as a duration: unset and 0 mean no limit.
    pub fn remote_timeout(seconds: Option<f64>) -> Option<std::time::Duration> {
        seconds
            .filter(|seconds| *seconds > 0.0)
            .map(std::time::Duration::from_secs_f64)
    }

    /// The compiled-plugin cache in force: the configured one or `<data-dir>/plugin-cache`.
    pub fn plugin_cache_dir_path(&self) -> PathBuf {
        self.plugin_cache_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("plugin-cache"))
    }

    /// The key file in force: the configured one or `<data-dir>/db_encryption.key`.
    pub fn db_encryption_key_path(&self) -> PathBuf {
        self.db_encryption_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join("db_encryption.key"))
    }

    /// The database URL in force: the configured one or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => format!(
                "sqlite://{}?mode=rwc",
                self.data_dir.join("granary.db").display()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Config;

    #[derive(clap::Parser)]
    struct Args {
        #[command(flatten)]
        config: Config,
    }

    fn config(args: &[&str]) -> Config {
        use clap::Parser as _;
        let mut argv = vec!["granary"];
        argv.extend_from_slice(args);
        Args::parse_from(argv).config
    }

    #[test]
    fn content_limits_fit_the_instance_pool() {
        assert!(
            config(&[]).check_content_limits(256).is_ok(),
            "the defaults fit"
        );
        let refused = |args: &[&str]| {
            config(args)
                .check_content_limits(256)
                .expect_err("refused")
                .to_string()
        };
        let error = refused(&["--content-plugin-calls", "250"]);
        assert!(error.contains("instance pool (256)"), "{error}");
        let error = refused(&["--content-per-distribution", "200"]);
        assert!(
            error.contains("--content-per-distribution (200)"),
            "{error}"
        );
        let error = refused(&["--content-per-client", "65"]);
        assert!(error.contains("--content-per-client (65)"), "{error}");
        let error = refused(&["--remote-sock-read-timeout=-1"]);
        assert!(error.contains("--remote-sock-read-timeout"), "{error}");
    }
}
