//! `CheckError`: what can stop a check before it has a report, by what the caller can do.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// A flag or a fault spec that makes no sense; fix the command line.
    #[error("invalid {what}: {message}")]
    Invalid { what: &'static str, message: String },
    /// A file could not be read or written.
    #[error("{action} {path}: {source}")]
    Io { action: &'static str, path: PathBuf, source: std::io::Error },
    /// `cluster.json` is not what `afterword up` writes.
    #[error("cluster description {path}: {message}")]
    Cluster { path: PathBuf, message: String },
    /// The HTTP client could not be built.
    #[error("HTTP client: {0}")]
    Client(String),
    /// A database node named by `cluster.json` could not be queried.
    #[error("database {node}: {message}")]
    Database { node: String, message: String },
    /// A target did not answer (or not as an Afterword server); start it, or fix `--target`.
    #[error("target {target} is unreachable: {message}")]
    Unreachable { target: String, message: String },
    /// A target answers but ignores `Afterword-Read-Strategy`: the strategies could not be told apart.
    #[error(
        "target {target} does not honour the Afterword-Read-Strategy header (no Afterword-Served-By in its \
         answer); start its app servers with --allow-strategy-override (e.g. `afterword up --allow-strategy-override`)"
    )]
    NoStrategyOverride { target: String },
    /// A plot could not be drawn.
    #[error("plot {path}: {message}")]
    Plot { path: PathBuf, message: String },
}

impl CheckError {
    pub fn invalid(what: &'static str, message: impl Into<String>) -> Self {
        CheckError::Invalid { what, message: message.into() }
    }

    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        CheckError::Io { action, path: path.into(), source }
    }
}
