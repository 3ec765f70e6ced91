//! One simulated user's HTTP side: its client (a cookie jar for a browser user; headers only
//! for an API client), its session and position tokens, and each API call turned into a
//! recorded `Operation`.

use std::sync::Arc;
use std::time::{Duration, Instant};

use model::Position;
use reqwest::header::HeaderMap;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::error::CheckError;
use crate::history::{parse_revision, Id, Observed, OpKind, Operation, Outcome, SeenState, UserId};

pub const POSITION_HEADER: &str = "afterword-position";
pub const SESSION_HEADER: &str = "afterword-session";
pub const LAST_WRITE_HEADER: &str = "afterword-last-write";
pub const STRATEGY_HEADER: &str = "afterword-read-strategy";
pub const SERVED_BY_HEADER: &str = "afterword-served-by";

/// How a user carries its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Cookies only (`afterword_session`, `afterword_pos`, `afterword_last_write`).
    Browser,
    /// The `Afterword-Session`, `Afterword-Position`, `Afterword-Last-Write` headers only.
    Api,
}

/// What every user of a run shares.
pub struct Shared {
    pub targets: Vec<String>,
    pub strategy: String,
    pub inflight: Arc<Semaphore>,
    pub inflight_max: usize,
    pub epoch: Instant,
    pub request_timeout_ms: u64,
    /// The `limit` of thread reads.
    pub page_comments_max: usize,
}

impl Shared {
    pub fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }
}

pub struct UserClient {
    pub user: UserId,
    pub kind: Kind,
    http: reqwest::Client,
    session: Option<String>,
    position: Option<String>,
    last_write: Option<String>,
    next_target: usize,
}

/// An answer, or why there was none.
enum Answer {
    Reply { status: StatusCode, headers: HeaderMap, body: Value },
    NoAnswer,
}

impl UserClient {
    pub fn new(user: UserId, kind: Kind, shared: &Shared) -> Result<UserClient, CheckError> {
        let http = reqwest::Client::builder()
            .cookie_store(kind == Kind::Browser)
            .timeout(Duration::from_millis(shared.request_timeout_ms))
            .pool_max_idle_per_host(2)
            .build()
            .map_err(|e| CheckError::Client(e.to_string()))?;
        let next_target = user as usize % shared.targets.len().max(1);
        Ok(UserClient { user, kind, http, session: None, position: None, last_write: None, next_target })
    }

    pub async fn create(
        &mut self,
        shared: &Shared,
        thread: &str,
        parent: Option<Id>,
        text: &str,
        key: Option<&str>,
    ) -> Operation {
        let mut body = json!({ "thread": thread, "text": text, "author": format!("user {}", self.user) });
        if let Some(parent) = parent {
            body["parent_id"] = json!(parent.to_string());
        }
        let extra: Vec<(&str, String)> = key.map(|k| ("idempotency-key", k.to_owned())).into_iter().collect();
        let (answer, start_ms, end_ms) = self.send(shared, Method::POST, "/api/v1/comments", Some(body), &extra).await;
        let (outcome, served_by, reply) = self.absorb(answer);
        let id = reply.as_ref().and_then(|b| b["comment"]["id"].as_str()).and_then(|s| s.parse().ok());
        let outcome = if outcome == Outcome::Ok && id.is_none() { Outcome::Unknown } else { outcome };
        let kind = OpKind::Create {
            thread: thread.to_owned(),
            parent_id: parent,
            idempotency_key: key.map(str::to_owned),
            id,
        };
        Operation { user: self.user, kind, outcome, start_ms, end_ms, served_by }
    }

    pub async fn read(&mut self, shared: &Shared, thread: &str) -> Operation {
        let path = format!("/api/v1/comments?thread={}&format=flat&limit={}", encode(thread), shared.page_comments_max);
        let (answer, start_ms, end_ms) = self.send(shared, Method::GET, &path, None, &[]).await;
        let (outcome, served_by, reply) = self.absorb(answer);
        let (observed, complete) = reply.as_ref().map(parse_listing).unwrap_or_default();
        let kind = OpKind::Read { thread: thread.to_owned(), observed, complete };
        Operation { user: self.user, kind, outcome, start_ms, end_ms, served_by }
    }

    pub async fn edit(&mut self, shared: &Shared, thread: &str, comment: Id, text: &str, revision: u32) -> Operation {
        let path = format!("/api/v1/comments/{comment}");
        let body = json!({ "text": text });
        let (answer, start_ms, end_ms) = self.send(shared, Method::PATCH, &path, Some(body), &[]).await;
        let (outcome, served_by, _) = self.absorb(answer);
        let kind = OpKind::Edit { thread: thread.to_owned(), comment, revision };
        Operation { user: self.user, kind, outcome, start_ms, end_ms, served_by }
    }

    pub async fn delete(&mut self, shared: &Shared, thread: &str, comment: Id) -> Operation {
        let path = format!("/api/v1/comments/{comment}");
        let (answer, start_ms, end_ms) = self.send(shared, Method::DELETE, &path, None, &[]).await;
        let (outcome, served_by, _) = self.absorb(answer);
        let kind = OpKind::Delete { thread: thread.to_owned(), comment };
        Operation { user: self.user, kind, outcome, start_ms, end_ms, served_by }
    }

    /// Sends to the next target; a target that refuses the connection (a killed app server)
    /// is skipped, as a load balancer would, at most once per target.
    async fn send(
        &mut self,
        shared: &Shared,
        method: Method,
        path: &str,
        body: Option<Value>,
        extra: &[(&str, String)],
    ) -> (Answer, u64, u64) {
        let _permit = shared.inflight.acquire().await;
        let start_ms = shared.now_ms();
        let mut answer = Answer::NoAnswer;
        for _ in 0..shared.targets.len() {
            let target = &shared.targets[self.next_target % shared.targets.len()];
            self.next_target = self.next_target.wrapping_add(1);
            let request = self.request(shared, method.clone(), &format!("{target}{path}"), body.as_ref(), extra);
            match request.send().await {
                Ok(response) => {
                    let status = response.status();
                    let headers = response.headers().clone();
                    let body = response.json::<Value>().await.unwrap_or(Value::Null);
                    answer = Answer::Reply { status, headers, body };
                    break;
                }
                Err(error) if error.is_connect() => continue,
                Err(_) => break,
            }
        }
        (answer, start_ms, shared.now_ms())
    }

    fn request(
        &self,
        shared: &Shared,
        method: Method,
        url: &str,
        body: Option<&Value>,
        extra: &[(&str, String)],
    ) -> RequestBuilder {
        let mut request = self.http.request(method, url).header(STRATEGY_HEADER, &shared.strategy);
        if self.kind == Kind::Api {
            for (name, value) in [
                (SESSION_HEADER, &self.session),
                (POSITION_HEADER, &self.position),
                (LAST_WRITE_HEADER, &self.last_write),
            ] {
                if let Some(value) = value {
                    request = request.header(name, value);
                }
            }
        }
        for (name, value) in extra {
            request = request.header(*name, value);
        }
        match body {
            Some(body) => request.json(body),
            None => request,
        }
    }

    /// The outcome, the `Afterword-Served-By` answer and the body of a 2xx; keeps the tokens
    /// an API client must send back.
    fn absorb(&mut self, answer: Answer) -> (Outcome, Option<String>, Option<Value>) {
        let Answer::Reply { status, headers, body } = answer else {
            return (Outcome::Unknown, None, None);
        };
        let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        let served_by = header(SERVED_BY_HEADER);
        if !status.is_success() {
            let outcome = if status == StatusCode::TOO_MANY_REQUESTS {
                Outcome::RateLimited
            } else {
                Outcome::Failed { status: status.as_u16() }
            };
            return (outcome, served_by, None);
        }
        if let Some(session) = header(SESSION_HEADER) {
            self.session = Some(session);
        }
        if let Some(last_write) = header(LAST_WRITE_HEADER) {
            self.last_write = Some(last_write);
        }
        self.position = highest(self.position.take(), header(POSITION_HEADER));
        (Outcome::Ok, served_by, Some(body))
    }
}

/// The higher of two tokens of one store; an unparsable or foreign new token replaces the
/// old one only when there is no old one (the server answers max(seen, its own) anyway).
fn highest(old: Option<String>, new: Option<String>) -> Option<String> {
    match (old, new) {
        (Some(old), Some(new)) => match (Position::parse(&old), Position::parse(&new)) {
            (Some(a), Some(b)) if a.store == b.store && a.pos > b.pos => Some(old),
            (Some(_), None) => Some(old),
            _ => Some(new),
        },
        (old, new) => new.or(old),
    }
}

/// The comments of a flat listing, and whether the page held the whole thread.
fn parse_listing(body: &Value) -> (Vec<Observed>, bool) {
    let complete = body.get("next").is_none_or(Value::is_null);
    let comments = body["comments"].as_array().map(Vec::as_slice).unwrap_or_default();
    let observed = comments
        .iter()
        .filter_map(|c| {
            let id = c["id"].as_str()?.parse().ok()?;
            let parent_id = c["parent_id"].as_str().and_then(|p| p.parse().ok());
            let state = match c["state"].as_str()? {
                "deleted" => SeenState::Deleted,
                "pending" => SeenState::Pending,
                _ => SeenState::Published,
            };
            let revision = c["html"].as_str().and_then(parse_revision);
            Some(Observed { id, parent_id, state, revision })
        })
        .collect();
    (observed, complete)
}

/// Percent-encodes a thread key for the query string.
fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_become_observations() {
        let body = json!({
            "comments": [
                {"id": "10", "parent_id": null, "state": "published", "html": "<p>hi [rev:2]</p>"},
                {"id": "11", "parent_id": "10", "state": "deleted", "html": ""},
                {"id": "bad"}
            ],
            "next": null
        });
        let (observed, complete) = parse_listing(&body);
        assert!(complete);
        assert_eq!(
            observed,
            vec![
                Observed { id: 10, parent_id: None, state: SeenState::Published, revision: Some(2) },
                Observed { id: 11, parent_id: Some(10), state: SeenState::Deleted, revision: None },
            ]
        );
        assert!(!parse_listing(&json!({"comments": [], "next": "10"})).1);
    }

    #[test]
    fn the_highest_token_is_kept() {
        let (low, high) = ("v1.7.1.100".to_owned(), "v1.7.1.200".to_owned());
        assert_eq!(highest(Some(high.clone()), Some(low.clone())), Some(high.clone()));
        assert_eq!(highest(Some(low.clone()), Some(high.clone())), Some(high.clone()));
        assert_eq!(highest(None, Some(low.clone())), Some(low.clone()));
        assert_eq!(highest(Some(low.clone()), Some("junk".into())), Some(low));
        assert_eq!(encode("/check/a b"), "/check/a%20b");
    }
}
