//! One simulated user's behaviour: post, read right after posting and again at fixed offsets,
//! read threads others wrote to, reply to comments it has seen, edit and delete its own, and
//! now and then retry a POST with the same `Idempotency-Key`.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::Rng;

use crate::history::{revision_marker, History, Id, OpKind, Operation, Outcome};
use crate::workload::bodies::Bodies;
use crate::workload::client::{Shared, UserClient};
use crate::workload::zipf::Zipf;

/// Bounds on what one user remembers.
pub const OWN_COMMENTS_MAX: usize = 64;
pub const SEEN_COMMENTS_MAX: usize = 256;
pub const FOLLOW_UPS_MAX: usize = 64;

/// Counters for the progress line.
#[derive(Debug, Default)]
pub struct Progress {
    pub operations: AtomicU64,
    pub reads: AtomicU64,
    pub writes: AtomicU64,
    pub errors: AtomicU64,
}

/// What all users of one strategy's run share besides the HTTP side.
pub struct World {
    pub shared: Shared,
    pub history: Mutex<History>,
    pub progress: Arc<Progress>,
    pub bodies: Arc<Bodies>,
    pub threads: Vec<String>,
    pub zipf: Zipf,
    pub deadline_ms: u64,
    /// Mean time between one user's own actions.
    pub think_ms_mean: f64,
    /// When to read a thread again after posting to it, from the acknowledgement.
    pub follow_up_offsets_ms: Vec<u64>,
}

struct Own {
    id: Id,
    thread: String,
    revision: u32,
}

pub struct User {
    client: UserClient,
    rng: StdRng,
    own: Vec<Own>,
    /// (comment, thread) this user has seen, for replies.
    seen: Vec<(Id, String)>,
    follow_ups: BinaryHeap<Reverse<(u64, String)>>,
    next_key: u64,
    /// An acknowledged create gave this user a session (cookie or header).
    has_session: bool,
    /// Only writers post, reply, edit and delete; the others read.
    writer: bool,
}

impl User {
    pub fn new(client: UserClient, rng: StdRng, writer: bool) -> User {
        User {
            client,
            rng,
            own: Vec::new(),
            seen: Vec::new(),
            follow_ups: BinaryHeap::new(),
            next_key: 0,
            has_session: false,
            writer,
        }
    }

    /// Acts until the deadline or until the history is full.
    pub async fn run(mut self, world: Arc<World>) {
        let mut next_action_ms = world.shared.now_ms() + self.think(&world);
        loop {
            let now = world.shared.now_ms();
            if now >= world.deadline_ms || world.history.lock().map_or(true, |h| h.is_full()) {
                return;
            }
            let due = self.follow_ups.peek().map(|Reverse((at, _))| *at);
            if let Some(at) = due.filter(|at| *at <= now) {
                let thread = self.follow_ups.pop().map(|Reverse((_, t))| t).unwrap_or_default();
                let _ = at;
                self.read(&world, &thread).await;
            } else if next_action_ms <= now {
                self.act(&world).await;
                next_action_ms = world.shared.now_ms() + self.think(&world);
            } else {
                let wake = due.unwrap_or(u64::MAX).min(next_action_ms).min(world.deadline_ms);
                tokio::time::sleep(Duration::from_millis(wake.saturating_sub(now).max(1))).await;
            }
        }
    }

    /// Exponential think time with the configured mean.
    fn think(&mut self, world: &World) -> u64 {
        let u: f64 = self.rng.random_range(f64::EPSILON..1.0);
        (-u.ln() * world.think_ms_mean).min(world.think_ms_mean * 10.0) as u64
    }

    async fn act(&mut self, world: &World) {
        if !self.writer {
            let thread = world.threads[world.zipf.sample(&mut self.rng)].clone();
            return self.read(world, &thread).await;
        }
        let roll: u32 = self.rng.random_range(0..100);
        match roll {
            0..25 => self.post(world, None).await,
            25..40 => {
                let parent = self.pick_seen();
                self.post(world, parent).await;
            }
            40..80 => {
                let thread = world.threads[world.zipf.sample(&mut self.rng)].clone();
                self.read(world, &thread).await;
            }
            80..90 => self.edit(world).await,
            90..95 => self.delete(world).await,
            _ => self.retried_post(world).await,
        }
    }

    fn pick_seen(&mut self) -> Option<(Id, String)> {
        match self.seen.len() {
            0 => None,
            n => Some(self.seen[self.rng.random_range(0..n)].clone()),
        }
    }

    fn text(&mut self, world: &World, revision: u32) -> String {
        format!("{} {}", world.bodies.pick(&mut self.rng), revision_marker(revision))
    }

    async fn post(&mut self, world: &World, parent: Option<(Id, String)>) {
        let thread = match &parent {
            Some((_, thread)) => thread.clone(),
            None => world.threads[world.zipf.sample(&mut self.rng)].clone(),
        };
        let text = self.text(world, 0);
        let op = self.client.create(&world.shared, &thread, parent.map(|(id, _)| id), &text, None).await;
        self.after_create(world, &op);
        record(world, op, false);
    }

    /// The same POST twice with one key, as a client does whose first answer got lost: the
    /// server must make one comment. Only once the user holds a session — a client retrying
    /// because it never saw the first answer also never saw the session that answer issued,
    /// so both attempts carry the same credentials (keys are scoped to the session).
    async fn retried_post(&mut self, world: &World) {
        if !self.has_session {
            return self.post(world, None).await;
        }
        let thread = world.threads[world.zipf.sample(&mut self.rng)].clone();
        let text = self.text(world, 0);
        self.next_key += 1;
        let key = format!("check-u{}-{}", self.client.user, self.next_key);
        let first = self.client.create(&world.shared, &thread, None, &text, Some(&key)).await;
        let second = self.client.create(&world.shared, &thread, None, &text, Some(&key)).await;
        self.after_create(world, &first);
        record(world, first, false);
        record(world, second, false);
    }

    fn after_create(&mut self, world: &World, op: &Operation) {
        let OpKind::Create { thread, id: Some(id), .. } = &op.kind else { return };
        if op.outcome != Outcome::Ok {
            return;
        }
        self.has_session = true;
        if self.own.len() < OWN_COMMENTS_MAX {
            self.own.push(Own { id: *id, thread: thread.clone(), revision: 0 });
        }
        for offset in &world.follow_up_offsets_ms {
            if self.follow_ups.len() < FOLLOW_UPS_MAX {
                self.follow_ups.push(Reverse((op.end_ms + offset, thread.clone())));
            }
        }
    }

    async fn read(&mut self, world: &World, thread: &str) {
        let op = self.client.read(&world.shared, thread).await;
        if let OpKind::Read { observed, .. } = &op.kind {
            for comment in observed.iter().filter(|c| c.revision.is_some()) {
                if self.seen.len() >= SEEN_COMMENTS_MAX {
                    let slot = self.rng.random_range(0..self.seen.len());
                    self.seen.swap_remove(slot);
                }
                self.seen.push((comment.id, thread.to_owned()));
            }
        }
        record(world, op, true);
    }

    async fn edit(&mut self, world: &World) {
        if self.own.is_empty() {
            return self.post(world, None).await;
        }
        let index = self.rng.random_range(0..self.own.len());
        let revision = self.own[index].revision + 1;
        let text = self.text(world, revision);
        let (id, thread) = (self.own[index].id, self.own[index].thread.clone());
        let op = self.client.edit(&world.shared, &thread, id, &text, revision).await;
        if op.outcome == Outcome::Ok {
            self.own[index].revision = revision;
        }
        record(world, op, false);
    }

    async fn delete(&mut self, world: &World) {
        if self.own.is_empty() {
            return self.post(world, None).await;
        }
        let index = self.rng.random_range(0..self.own.len());
        let own = self.own.swap_remove(index);
        let op = self.client.delete(&world.shared, &own.thread, own.id).await;
        record(world, op, false);
    }
}

fn record(world: &World, op: Operation, is_read: bool) {
    let progress = &world.progress;
    progress.operations.fetch_add(1, Ordering::Relaxed);
    let counter = if is_read { &progress.reads } else { &progress.writes };
    counter.fetch_add(1, Ordering::Relaxed);
    if op.outcome != Outcome::Ok {
        progress.errors.fetch_add(1, Ordering::Relaxed);
    }
    if let Ok(mut history) = world.history.lock() {
        history.push(op);
    }
}
