//! Afterword's HTTP API: `router(state) -> Router`, one module per route group.

pub mod config;
mod state;

pub use config::{ApiConfig, Limits, RateLimits, SiteConfig};
pub use state::AppState;

use axum::Router;

/// The whole HTTP surface of an app server.
pub fn router(state: AppState) -> Router {
    let _ = state;
    Router::new()
}
