//! The position token: a totally ordered store position on the wire, versioned and naming its
//! store so positions from different stores are never compared.
//!
//! Wire forms: PostgreSQL `v1.<system id>.<timeline>.<lsn>`; SQLite `v1.<database uuid>.<counter>`.

use std::fmt;

use uuid::Uuid;

/// Which store (and which history of it) a position belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StoreId {
    Postgres { system_id: u64, timeline: u32 },
    Sqlite { database: Uuid },
}

impl StoreId {
    /// Whether both name the same database, whatever the timeline (for lag figures only:
    /// positions of different timelines are never compared for consistency).
    pub fn same_system(self, other: StoreId) -> bool {
        match (self, other) {
            (StoreId::Postgres { system_id: a, .. }, StoreId::Postgres { system_id: b, .. }) => a == b,
            (a, b) => a == b,
        }
    }
}

/// A position in one store's commit order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Position {
    pub store: StoreId,
    pub pos: u64,
}

impl Position {
    /// Parses a wire token. Malformed or unknown-version tokens give `None`: a bad token is
    /// ignored, never an error.
    pub fn parse(token: &str) -> Option<Position> {
        let mut parts = token.trim().split('.');
        if parts.next()? != "v1" {
            return None;
        }
        let fields: Vec<&str> = parts.collect();
        match fields.as_slice() {
            [database, pos] => Some(Position {
                store: StoreId::Sqlite { database: Uuid::try_parse(database).ok()? },
                pos: pos.parse().ok()?,
            }),
            [system_id, timeline, pos] => Some(Position {
                store: StoreId::Postgres { system_id: system_id.parse().ok()?, timeline: timeline.parse().ok()? },
                pos: pos.parse().ok()?,
            }),
            _ => None,
        }
    }

    /// The later of two positions of the same store; a position of another store is ignored.
    pub fn max_same_store(self, other: Option<Position>) -> Position {
        match other {
            Some(other) if other.store == self.store && other.pos > self.pos => other,
            _ => self,
        }
    }

    /// Whether `self` covers everything `seen` names. A foreign `seen` is never covered.
    pub fn covers(self, seen: Position) -> bool {
        self.store == seen.store && self.pos >= seen.pos
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.store {
            StoreId::Sqlite { database } => write!(f, "v1.{}.{}", database.simple(), self.pos),
            StoreId::Postgres { system_id, timeline } => {
                write!(f, "v1.{system_id}.{timeline}.{}", self.pos)
            }
        }
    }
}

/// The highest same-store position among several tokens (header, cookie, JSON field).
pub fn highest_of<'a>(store: StoreId, tokens: impl IntoIterator<Item = &'a str>) -> Option<Position> {
    tokens.into_iter().filter_map(Position::parse).filter(|p| p.store == store).max_by_key(|p| p.pos)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(pos: u64) -> Position {
        Position { store: StoreId::Sqlite { database: Uuid::from_u128(42) }, pos }
    }

    #[test]
    fn round_trips_both_forms() {
        let pg = Position { store: StoreId::Postgres { system_id: 7301, timeline: 2 }, pos: 99 };
        assert_eq!(pg.to_string(), "v1.7301.2.99");
        assert_eq!(Position::parse("v1.7301.2.99"), Some(pg));
        let sq = sqlite(5);
        assert_eq!(Position::parse(&sq.to_string()), Some(sq));
    }

    #[test]
    fn malformed_tokens_are_ignored() {
        for bad in ["", "v1", "v2.1.2.3", "v1.x.2.3", "v1.1.2.-3", "v1.nope.3", "v1.1.2.3.4", "💥"] {
            assert_eq!(Position::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn foreign_positions_are_never_compared() {
        let other = Position { store: StoreId::Sqlite { database: Uuid::from_u128(43) }, pos: 1_000 };
        assert_eq!(sqlite(3).max_same_store(Some(other)), sqlite(3));
        assert!(!sqlite(2_000).covers(other));
        assert_eq!(sqlite(3).max_same_store(Some(sqlite(9))), sqlite(9));
        let store = sqlite(0).store;
        let a = sqlite(4).to_string();
        let b = sqlite(8).to_string();
        let c = other.to_string();
        assert_eq!(highest_of(store, [a.as_str(), c.as_str(), b.as_str(), "junk"]), Some(sqlite(8)));
    }
}
