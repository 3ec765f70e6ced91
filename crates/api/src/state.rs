//! Shared state of one app server: the store, config, signer, id generator, clock, metrics.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use metrics_exporter_prometheus::PrometheusHandle;
use model::{Clock, IdGenerator, SessionSigner};
use store::Store;

use crate::config::ApiConfig;

#[derive(Clone)]
pub struct AppState {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub store: Arc<dyn Store>,
    pub config: ApiConfig,
    pub signer: SessionSigner,
    pub ids: Mutex<IdGenerator>,
    pub clock: Arc<dyn Clock>,
    pub metrics: Option<PrometheusHandle>,
    pub draining: AtomicBool,
}

impl AppState {
    /// `ids` should already have been resumed after the store's highest id.
    pub fn new(
        store: Arc<dyn Store>,
        config: ApiConfig,
        signer: SessionSigner,
        ids: IdGenerator,
        clock: Arc<dyn Clock>,
        metrics: Option<PrometheusHandle>,
    ) -> Self {
        let inner = Inner {
            store,
            config,
            signer,
            ids: Mutex::new(ids),
            clock,
            metrics,
            draining: AtomicBool::new(false),
        };
        Self { inner: Arc::new(inner) }
    }

    /// From now on `/readyz` fails, so a load balancer stops sending new requests.
    pub fn begin_draining(&self) {
        self.inner.draining.store(true, Ordering::SeqCst);
    }
}
