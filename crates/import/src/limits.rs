//! Bounds on what a reader holds at once, so a hostile or huge export cannot exhaust memory.

/// Per-reader limits; the binary fills them from `[import]` in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadLimits {
    /// The longest text one field (a message, a title) may have; longer records are skipped.
    pub field_bytes_max: usize,
    /// The longest line a JSON lines export may have; a longer line is skipped unread.
    pub line_bytes_max: usize,
}

/// `field_bytes_max` by default: 1 MiB, far above any real comment (the samples peak at 12.7 kB).
pub const FIELD_BYTES_MAX: usize = 1 << 20;
/// `line_bytes_max` by default: a JSON line carries a body and its rendered HTML, plus metadata.
pub const LINE_BYTES_MAX: usize = 4 << 20;

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits { field_bytes_max: FIELD_BYTES_MAX, line_bytes_max: LINE_BYTES_MAX }
    }
}
