//! The configuration: defaults, then a TOML file, then `AFTERWORD_*` variables, then CLI flags.
//!
//! Unknown keys are rejected everywhere (`deny_unknown_fields`), so a typo fails at start-up
//! with the key's name instead of being silently ignored.

use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use api::{ApiConfig, Limits, RateLimits, SiteConfig};
use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::Deserialize;
use store::{SqliteConfig, Synchronous};

pub const DATA_DIR_DEFAULT: &str = "./afterword-data";
pub const LISTEN_DEFAULT: &str = "127.0.0.1:8080";
const ENV_PREFIX: &str = "AFTERWORD_";

/// Variables under the prefix that are not config keys (`CONFIG`, `LOG`), or whose values must
/// stay raw strings: figment parses variable values, so an all-digit secret would become a
/// number (and a long one a lossy float). Those are read verbatim instead; `DATA_DIR` and
/// `LISTEN` also arrive as CLI flags, which clap reads from the same variables.
const ENV_KEYS_NOT_PARSED: &[&str] = &["config", "log", "data_dir", "listen", "admin_token", "session_secret"];
/// `AFTERWORD_*` variables of the test and benchmark tools (`AFTERWORD_TEST_STORE`,
/// `AFTERWORD_PG_BIN`, `AFTERWORD_BIN`), not configuration: a shell that exports one must still
/// be able to run the server.
fn is_tool_variable(key: &str) -> bool {
    key.starts_with("test_") || key == "pg_bin" || key == "bin"
}
const ENV_STRINGS: &[(&str, &str)] =
    &[("admin_token", "AFTERWORD_ADMIN_TOKEN"), ("session_secret", "AFTERWORD_SESSION_SECRET")];

/// The shortest `session_secret` accepted: HMAC keys should hold at least 32 bytes.
pub const SESSION_SECRET_BYTES_MIN: usize = 32;

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum SynchronousSetting {
    #[default]
    Full,
    Normal,
}

/// The `[sqlite]` table; defaults are `SqliteConfig::new`'s.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct SqliteSettings {
    pub readers_max: usize,
    pub read_wait_ms_max: u64,
    pub write_queue_len_max: usize,
    pub write_queue_wait_ms_max: u64,
    pub busy_timeout_ms: u64,
    pub synchronous: SynchronousSetting,
    pub thread_rows_max: usize,
}

impl Default for SqliteSettings {
    fn default() -> Self {
        let defaults = SqliteConfig::new(PathBuf::new());
        Self {
            readers_max: defaults.readers_max,
            read_wait_ms_max: defaults.read_wait_ms_max,
            write_queue_len_max: defaults.write_queue_len_max,
            write_queue_wait_ms_max: defaults.write_queue_wait_ms_max,
            busy_timeout_ms: defaults.busy_timeout_ms,
            synchronous: match defaults.synchronous {
                Synchronous::Full => SynchronousSetting::Full,
                Synchronous::Normal => SynchronousSetting::Normal,
            },
            thread_rows_max: defaults.thread_rows_max,
        }
    }
}

/// The `[import]` table.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields, default)]
pub struct ImportSettings {
    /// Records (threads and comments) written per transaction.
    pub batch_rows_max: usize,
    /// The longest text one field of an export (a message, a title) may have; longer records
    /// are skipped with their reason.
    pub field_bytes_max: usize,
    /// The longest line of a JSON lines export; a longer line is skipped unread.
    pub line_bytes_max: usize,
    /// Skipped records listed (with reasons) in the summary; all are counted.
    pub skipped_listed_max: usize,
    /// Orphans listed in the summary; all are counted.
    pub orphans_listed_max: usize,
}

impl Default for ImportSettings {
    fn default() -> Self {
        let limits = import::ReadLimits::default();
        Self {
            batch_rows_max: 5_000,
            field_bytes_max: limits.field_bytes_max,
            line_bytes_max: limits.line_bytes_max,
            skipped_listed_max: 10_000,
            orphans_listed_max: 10_000,
        }
    }
}

/// The whole configuration, as the file spells it.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default = "data_dir_default")]
    pub data_dir: PathBuf,
    /// `host:port`; a host name is resolved when binding.
    #[serde(default = "listen_default")]
    pub listen: String,
    #[serde(default)]
    pub admin_token: Option<String>,
    /// HMAC key for session tokens, shared by all app servers. Without it the key is kept in
    /// `DATA_DIR/session.key`.
    #[serde(default)]
    pub session_secret: Option<String>,
    #[serde(default)]
    pub trusted_proxies: Vec<IpAddr>,
    #[serde(default)]
    pub log_format: LogFormat,
    #[serde(default)]
    pub limits: Limits,
    #[serde(default)]
    pub rate_limit: RateLimits,
    /// Empty means one site, `default`, for the local demo (see `api_config`).
    #[serde(default)]
    pub sites: Vec<SiteConfig>,
    #[serde(default)]
    pub sqlite: SqliteSettings,
    /// Set `[postgres].url` to use PostgreSQL instead of the embedded SQLite file.
    #[serde(default)]
    pub postgres: crate::backend::PostgresSettings,
    #[serde(default)]
    pub import: ImportSettings,
    #[serde(default = "shutdown_grace_ms_default")]
    pub shutdown_grace_ms: u64,
    /// How reads are routed among PostgreSQL replicas: causal (default), primary, eventual or
    /// sticky:<duration>. `serve --strategy` overrides it.
    #[serde(default = "read_strategy_default")]
    pub read_strategy: String,
    /// Honour `Afterword-Read-Strategy` request headers and answer `Afterword-Served-By`
    /// (`serve --allow-strategy-override`). For verification, never in production.
    #[serde(default)]
    pub allow_strategy_override: bool,
}

fn read_strategy_default() -> String {
    "causal".to_owned()
}

fn data_dir_default() -> PathBuf {
    PathBuf::from(DATA_DIR_DEFAULT)
}

fn listen_default() -> String {
    LISTEN_DEFAULT.to_owned()
}

fn shutdown_grace_ms_default() -> u64 {
    10_000
}

/// What the command line says about the configuration; `Some` overrides file and environment.
#[derive(Debug, Clone, Default)]
pub struct Overrides {
    pub config_file: Option<PathBuf>,
    pub data_dir: Option<PathBuf>,
    pub listen: Option<String>,
}

impl Config {
    /// Reads the file named by `--config` (if any) and the environment, then applies the flags.
    pub fn load(overrides: &Overrides) -> anyhow::Result<Config> {
        let mut figment = Figment::new();
        if let Some(file) = &overrides.config_file {
            // `Toml::file` treats a missing file as empty; a file named on purpose must exist.
            if !file.is_file() {
                bail!("the config file {} does not exist or is not a file", file.display());
            }
            figment = figment.merge(Toml::file_exact(file));
        }
        figment = figment.merge(
            Env::prefixed(ENV_PREFIX)
                .filter(|key| !is_tool_variable(&key.as_str().to_ascii_lowercase()))
                .split("__")
                .ignore(ENV_KEYS_NOT_PARSED),
        );
        for (key, variable) in ENV_STRINGS {
            if let Ok(value) = std::env::var(variable) {
                figment = figment.merge(Serialized::global(key, value));
            }
        }
        let mut config = Config::from_figment(figment)?;
        if let Some(data_dir) = &overrides.data_dir {
            config.data_dir = data_dir.clone();
        }
        if let Some(listen) = &overrides.listen {
            config.listen = listen.clone();
        }
        Ok(config)
    }

    /// Extracts and checks a configuration; the error names the offending key and its source.
    pub fn from_figment(figment: Figment) -> anyhow::Result<Config> {
        let config: Config = figment.extract().map_err(|error| {
            let lines: Vec<String> = error.into_iter().map(|e| e.to_string()).collect();
            anyhow::anyhow!("invalid configuration: {}", lines.join("; "))
        })?;
        config.check()?;
        Ok(config)
    }

    /// The configured read strategy, checked.
    pub fn strategy(&self) -> anyhow::Result<model::Strategy> {
        self.read_strategy.parse().map_err(|error| anyhow::anyhow!("invalid configuration: read_strategy: {error}"))
    }

    fn check(&self) -> anyhow::Result<()> {
        self.strategy()?;
        let mut names = HashSet::new();
        for site in &self.sites {
            if site.name.trim().is_empty() {
                bail!("invalid configuration: a [[sites]] entry has an empty name");
            }
            if !names.insert(site.name.as_str()) {
                bail!("invalid configuration: site name {:?} is used twice in [[sites]]", site.name);
            }
        }
        if let Some(secret) = &self.session_secret {
            if secret.len() < SESSION_SECRET_BYTES_MIN {
                bail!("invalid configuration: session_secret must be at least {SESSION_SECRET_BYTES_MIN} bytes long");
            }
        }
        self.postgres.check()?;
        self.check_limits()?;
        self.check_sites()?;
        if self.admin_token.as_deref().is_some_and(|token| token.trim().is_empty()) {
            bail!("invalid configuration: admin_token is empty (no request could ever match it); remove it to disable moderation");
        }
        if self.import.batch_rows_max == 0 {
            bail!("invalid configuration: import.batch_rows_max must be at least 1");
        }
        if self.import.field_bytes_max == 0 || self.import.line_bytes_max == 0 {
            bail!("invalid configuration: import.field_bytes_max and import.line_bytes_max must be at least 1");
        }
        Ok(())
    }

    /// Limits that would make the service refuse everything, or contradict each other.
    fn check_limits(&self) -> anyhow::Result<()> {
        let l = &self.limits;
        let at_least_one = [
            ("limits.text_chars_max", l.text_chars_max),
            ("limits.import_text_chars_max", l.import_text_chars_max),
            ("limits.body_bytes_max", l.body_bytes_max),
            ("limits.page_comments_max", l.page_comments_max),
            ("limits.page_comments_default", l.page_comments_default),
            ("limits.counts_threads_max", l.counts_threads_max),
            ("limits.page_threads_default", l.page_threads_default),
            ("limits.page_threads_max", l.page_threads_max),
            ("limits.connections_max", l.connections_max),
            ("sqlite.readers_max", self.sqlite.readers_max),
            ("sqlite.write_queue_len_max", self.sqlite.write_queue_len_max),
            ("sqlite.thread_rows_max", self.sqlite.thread_rows_max),
        ];
        let at_least_one_ms = [
            ("limits.request_timeout_ms", l.request_timeout_ms),
            ("limits.header_read_timeout_ms", l.header_read_timeout_ms),
        ];
        let zero = at_least_one.iter().find(|(_, value)| *value == 0).map(|(name, _)| *name);
        let zero = zero.or_else(|| at_least_one_ms.iter().find(|(_, value)| *value == 0).map(|(name, _)| *name));
        if let Some(name) = zero {
            bail!("invalid configuration: {name} must be at least 1");
        }
        if l.edit_window_s < 0 {
            bail!("invalid configuration: limits.edit_window_s must not be negative (0 turns author edits off)");
        }
        if l.page_comments_default > l.page_comments_max {
            bail!(
                "invalid configuration: limits.page_comments_default ({}) must not exceed limits.page_comments_max ({})",
                l.page_comments_default,
                l.page_comments_max
            );
        }
        if l.page_threads_default > l.page_threads_max {
            bail!(
                "invalid configuration: limits.page_threads_default ({}) must not exceed limits.page_threads_max ({})",
                l.page_threads_default,
                l.page_threads_max
            );
        }
        Ok(())
    }

    /// Each allowed origin must be what a browser sends: `scheme://host[:port]`, nothing else.
    fn check_sites(&self) -> anyhow::Result<()> {
        for site in &self.sites {
            for origin in &site.origins {
                let valid = url::Url::parse(origin).is_ok_and(|url| {
                    matches!(url.scheme(), "http" | "https")
                        && url.host().is_some()
                        && url.path() == "/"
                        && url.query().is_none()
                        && !origin.ends_with('/')
                });
                if !valid {
                    bail!(
                        "invalid configuration: sites.origins of site {:?}: {origin:?} is not an origin; write it as a browser sends it, e.g. \"https://blog.example.org\"",
                        site.name
                    );
                }
            }
        }
        Ok(())
    }

    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("afterword.sqlite3")
    }

    pub fn sqlite_config(&self) -> SqliteConfig {
        let s = &self.sqlite;
        SqliteConfig {
            readers_max: s.readers_max,
            read_wait_ms_max: s.read_wait_ms_max,
            write_queue_len_max: s.write_queue_len_max,
            write_queue_wait_ms_max: s.write_queue_wait_ms_max,
            busy_timeout_ms: s.busy_timeout_ms,
            synchronous: match s.synchronous {
                SynchronousSetting::Full => Synchronous::Full,
                SynchronousSetting::Normal => Synchronous::Normal,
            },
            thread_rows_max: s.thread_rows_max,
            ..SqliteConfig::new(self.database_path())
        }
    }

    /// The configured sites, or the one default site. Its allowed origins follow the address
    /// the server really listens on (`bound`), so the demo page works on any port.
    pub fn sites(&self, bound: Option<SocketAddr>) -> Vec<SiteConfig> {
        if !self.sites.is_empty() {
            return self.sites.clone();
        }
        let mut site = SiteConfig::default_site();
        if let Some(bound) = bound {
            site.origins = local_origins(bound);
        }
        vec![site]
    }

    /// The site an import writes to: the named one, or the first configured.
    pub fn site(&self, name: Option<&str>) -> anyhow::Result<SiteConfig> {
        let sites = self.sites(None);
        let Some(name) = name else {
            return sites.into_iter().next().context("no site is configured");
        };
        let known: Vec<String> = sites.iter().map(|s| s.name.clone()).collect();
        sites
            .into_iter()
            .find(|s| s.name == name)
            .with_context(|| format!("no site named {name:?} in the configuration (known: {})", known.join(", ")))
    }

    pub fn api_config(&self, bound: Option<SocketAddr>) -> ApiConfig {
        ApiConfig {
            limits: self.limits.clone(),
            rate_limits: self.rate_limit.clone(),
            sites: self.sites(bound),
            admin_token: self.admin_token.clone(),
            trusted_proxies: self.trusted_proxies.clone(),
            // Checked when the configuration was loaded.
            read_strategy: self.strategy().unwrap_or_default(),
            allow_strategy_override: self.allow_strategy_override,
        }
    }
}

/// Origins a browser uses to reach a server bound to `addr`: a loopback or wildcard address is
/// reached as `127.0.0.1` and `localhost`.
fn local_origins(addr: SocketAddr) -> Vec<String> {
    let port = addr.port();
    if addr.ip().is_loopback() || addr.ip().is_unspecified() {
        let ip = if addr.is_ipv4() { "127.0.0.1" } else { "[::1]" };
        vec![format!("http://{ip}:{port}"), format!("http://localhost:{port}")]
    } else {
        vec![format!("http://{addr}")]
    }
}

/// The session signing key: the configured secret, or 32 random bytes kept in
/// `DATA_DIR/session.key` (mode 0600) so sessions survive a restart.
pub fn session_key(config: &Config) -> anyhow::Result<Vec<u8>> {
    if let Some(secret) = &config.session_secret {
        return Ok(secret.as_bytes().to_vec());
    }
    let path = config.data_dir.join("session.key");
    match read_key(&path)? {
        Some(key) => Ok(key),
        None => create_key(&path),
    }
}

fn read_key(path: &Path) -> anyhow::Result<Option<Vec<u8>>> {
    match std::fs::read(path) {
        Ok(key) if key.len() >= SESSION_SECRET_BYTES_MIN => Ok(Some(key)),
        Ok(key) => bail!(
            "{} holds {} bytes, fewer than {SESSION_SECRET_BYTES_MIN}: delete it to make a new key (this ends every session)",
            path.display(),
            key.len()
        ),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(error) => Err(error).with_context(|| format!("cannot read the session key {}", path.display())),
    }
}

fn create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    use std::io::Write;
    let key: [u8; 32] = rand::random();
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = match options.open(path) {
        Ok(file) => file,
        // Another process made it first: use theirs.
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => {
            return read_key(path)?.with_context(|| format!("{} vanished while being read", path.display()));
        }
        Err(error) => return Err(error).with_context(|| format!("cannot create the session key {}", path.display())),
    };
    file.write_all(&key)
        .and_then(|()| file.sync_all())
        .with_context(|| format!("cannot write the session key {}", path.display()))?;
    Ok(key.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(toml: &str) -> anyhow::Result<Config> {
        Config::from_figment(Figment::new().merge(Toml::string(toml)))
    }

    #[test]
    fn defaults_give_the_embedded_mode() {
        let config = parse("").expect("empty config");
        assert_eq!(config.data_dir, PathBuf::from(DATA_DIR_DEFAULT));
        assert_eq!(config.listen, LISTEN_DEFAULT);
        assert_eq!(config.shutdown_grace_ms, 10_000);
        assert_eq!(config.import.batch_rows_max, 5_000);
        assert_eq!(config.sites(None), vec![SiteConfig::default_site()]);
        let default_bound: SocketAddr = "127.0.0.1:8080".parse().expect("addr");
        assert_eq!(config.sites(Some(default_bound)), vec![SiteConfig::default_site()]);
        let sqlite = config.sqlite_config();
        assert_eq!(sqlite.path, PathBuf::from(DATA_DIR_DEFAULT).join("afterword.sqlite3"));
        assert_eq!(sqlite.synchronous, Synchronous::Full);
    }

    #[test]
    fn tables_are_read() {
        let config = parse(
            r#"
            listen = "0.0.0.0:9000"
            trusted_proxies = ["10.0.0.1"]
            log_format = "json"
            shutdown_grace_ms = 500
            [limits]
            text_chars_max = 5
            [sqlite]
            synchronous = "normal"
            readers_max = 2
            [import]
            batch_rows_max = 10
            [[sites]]
            name = "blog"
            origins = ["https://blog.example.org"]
            trailing_slash = "keep"
            "#,
        )
        .expect("valid config");
        assert_eq!(config.limits.text_chars_max, 5);
        assert_eq!(config.log_format, LogFormat::Json);
        assert_eq!(config.sqlite_config().synchronous, Synchronous::Normal);
        assert_eq!(config.sqlite_config().readers_max, 2);
        assert_eq!(config.import.batch_rows_max, 10);
        assert_eq!(config.site(None).expect("site").name, "blog");
        assert!(config.site(Some("nope")).is_err());
    }

    #[test]
    fn unknown_keys_are_named() {
        for (toml, key) in [
            ("[limits]\ntext_chars_maxx = 5", "text_chars_maxx"),
            ("listne = \"x\"", "listne"),
            ("[sqlite]\nreaders = 1", "readers"),
            ("[[sites]]\nname = \"a\"\norigin = []", "origin"),
        ] {
            let error = parse(toml).expect_err(toml).to_string();
            assert!(error.contains(key), "{toml}: {error}");
        }
    }

    #[test]
    fn site_names_are_unique_and_non_empty() {
        let twice = parse("[[sites]]\nname = \"a\"\n[[sites]]\nname = \"a\"").expect_err("duplicate");
        assert!(twice.to_string().contains("used twice"), "{twice}");
        let empty = parse("[[sites]]\nname = \" \"").expect_err("empty");
        assert!(empty.to_string().contains("empty name"), "{empty}");
        let short = parse("session_secret = \"short\"").expect_err("short secret");
        assert!(short.to_string().contains("session_secret"), "{short}");
    }

    #[test]
    fn the_readme_configuration_example_loads() {
        let readme = include_str!("../../../README.md");
        let section = &readme[readme.find("## Configure").expect("a Configure section")..];
        let open = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
        let close = open + section[open..].find("```").expect("the block's end");
        let config = parse(&section[open..close]).expect("the README's example configuration loads");
        assert_eq!(config.sites.len(), 1);
    }

    #[test]
    fn tool_variables_are_not_configuration() {
        assert!(is_tool_variable("test_store") && is_tool_variable("pg_bin") && is_tool_variable("bin"));
        assert!(!is_tool_variable("limits__text_chars_max") && !is_tool_variable("binding"));
    }

    #[test]
    fn nonsensical_values_are_refused_naming_the_key() {
        for (toml, key) in [
            ("[limits]\ntext_chars_max = 0", "limits.text_chars_max"),
            ("[limits]\nbody_bytes_max = 0", "limits.body_bytes_max"),
            ("[limits]\nedit_window_s = -100", "limits.edit_window_s"),
            ("[limits]\npage_comments_max = 10\npage_comments_default = 500", "limits.page_comments_default"),
            ("[limits]\npage_threads_max = 10", "limits.page_threads_default"),
            ("[sqlite]\nreaders_max = 0", "sqlite.readers_max"),
            ("admin_token = \"  \"", "admin_token"),
            ("[[sites]]\nname = \"a\"\norigins = [\"not a url\"]", "sites.origins"),
            ("[[sites]]\nname = \"a\"\norigins = [\"*\"]", "sites.origins"),
            ("[[sites]]\nname = \"a\"\norigins = [\"https://a.example/blog\"]", "sites.origins"),
        ] {
            let error = parse(toml).expect_err(toml).to_string();
            assert!(error.contains(key), "{toml}: {error}");
        }
        parse("[[sites]]\nname = \"a\"\norigins = [\"https://a.example\", \"http://localhost:4000\"]")
            .expect("real origins");
    }

    #[test]
    fn default_site_origins_follow_the_bound_address() {
        let config = parse("").expect("empty config");
        let bound: SocketAddr = "127.0.0.1:41234".parse().expect("addr");
        assert_eq!(config.sites(Some(bound))[0].origins, ["http://127.0.0.1:41234", "http://localhost:41234"]);
        let public: SocketAddr = "192.0.2.7:80".parse().expect("addr");
        assert_eq!(config.sites(Some(public))[0].origins, ["http://192.0.2.7:80"]);
    }

    #[test]
    fn session_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = parse("").expect("empty config");
        config.data_dir = dir.path().to_owned();
        let first = session_key(&config).expect("new key");
        assert_eq!(first.len(), 32);
        assert_eq!(session_key(&config).expect("kept key"), first);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join("session.key")).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
