//! The rules that keep a cache from hiding a reader's own comment, as pure functions.
//!
//! An entry is tagged with a position the data is known to include — an under-estimate (for a
//! replica read, the replica position known *before* the query). It may be served only to a
//! reader whose `seen` it covers, and a set may only replace an entry with an older tag.

use crate::position::Position;

/// Whether an entry tagged `tag` may answer a reader who has seen `seen`.
pub fn servable(tag: Position, seen: Option<Position>) -> bool {
    match seen {
        None => true,
        Some(seen) => tag.covers(seen),
    }
}

/// Whether a result tagged `incoming` may replace an entry tagged `existing` ("only if newer").
pub fn replaces(existing: Option<Position>, incoming: Position) -> bool {
    match existing {
        None => true,
        Some(existing) if existing.store != incoming.store => true,
        Some(existing) => incoming.pos > existing.pos,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::position::StoreId;

    fn p(pos: u64) -> Position {
        Position { store: StoreId::Postgres { system_id: 1, timeline: 1 }, pos }
    }

    #[test]
    fn entries_serve_only_readers_they_cover() {
        assert!(servable(p(10), None));
        assert!(servable(p(10), Some(p(10))));
        assert!(!servable(p(10), Some(p(11))));
        let foreign = Position { store: StoreId::Postgres { system_id: 2, timeline: 1 }, pos: 1 };
        assert!(!servable(p(10), Some(foreign)));
    }

    #[test]
    fn sets_only_if_newer() {
        assert!(replaces(None, p(1)));
        assert!(replaces(Some(p(1)), p(2)));
        assert!(!replaces(Some(p(2)), p(2)));
        assert!(!replaces(Some(p(3)), p(2)));
    }
}
