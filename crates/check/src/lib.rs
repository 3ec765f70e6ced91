//! `afterword check`: a Jepsen-style verifier. Drives real HTTP traffic at a running cluster
//! with simulated users, records every operation in a `History`, checks the consistency
//! guarantees on it (`checker`, pure) and reports what users would have experienced.
//!
//! Depends on `model` only (positions, strategies); knows nothing about the store or the API's
//! code — it talks to the servers over HTTP and to PostgreSQL through `cluster.json`.

pub mod checker;
pub mod cluster;
pub mod error;
pub mod faults;
pub mod history;
pub mod preflight;
pub mod report;
pub mod run;
pub mod workload;

pub use checker::{check, FinalSets, Findings, Staleness, Violation, ViolationKind};
pub use error::CheckError;
pub use history::{History, Observed, OpKind, Operation, Outcome, SeenState, UserId};
