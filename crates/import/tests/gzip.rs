//! Gzip by magic bytes: every format reads the same records from a gzipped copy (one member or
//! several), plain input passes through untouched, and a corrupt stream is an I/O error.

mod common;

use std::io::{BufRead, BufReader, Write};

use common::{sample, tally, Tally};
use flate2::write::GzEncoder;
use flate2::Compression;
use import::gzip::sniff;
use import::{DisqusReader, ImportError, RedditReader, WxrReader};

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(bytes).expect("compress");
    encoder.finish().expect("compress")
}

/// Reads `bytes` through `sniff` with the reader for `name`'s format.
fn read_as(name: &str, bytes: Vec<u8>) -> (Tally, bool) {
    // A tiny buffer puts the two magic bytes on a buffer boundary.
    let input = sniff(BufReader::with_capacity(1, std::io::Cursor::new(bytes))).expect("sniff");
    let reader: Box<dyn BufRead> = input.reader;
    let result = if name.starts_with("disqus") {
        tally(DisqusReader::new(reader))
    } else if name.starts_with("wxr") {
        tally(WxrReader::new(reader))
    } else {
        tally(RedditReader::new(reader))
    };
    (result, input.gzip)
}

#[test]
fn every_sample_reads_the_same_gzipped_as_plain() {
    for name in [
        "disqus_export_tl3shi_blog.anon.xml",
        "disqus_fixture_isso.anon.xml",
        "disqus_fixture_remark42.anon.xml",
        "wxr_fixture_isso.anon.xml",
        "wxr_wp_theme_unit_test.anon.xml",
        "reddit_thread_n49rw_comments.jsonl",
    ] {
        let raw = sample(name);
        let (plain, was_gzip) = read_as(name, raw.clone());
        assert!(!was_gzip, "{name}");
        assert!(plain.fatal.is_none(), "{name}: {:?}", plain.fatal);
        // Two members, split mid-file, as `cat a.gz b.gz` makes.
        let half = raw.len() / 2;
        let mut two_members = gzip(&raw[..half]);
        two_members.extend(gzip(&raw[half..]));
        for (label, bytes) in [("one member", gzip(&raw)), ("two members", two_members)] {
            let (zipped, was_gzip) = read_as(name, bytes);
            assert!(was_gzip, "{name} {label}");
            assert!(zipped.fatal.is_none(), "{name} {label}: {:?}", zipped.fatal);
            assert_eq!(zipped.threads, plain.threads, "{name} {label}");
            assert_eq!(zipped.comments, plain.comments, "{name} {label}");
            assert_eq!(zipped.skipped, plain.skipped, "{name} {label}");
        }
    }
}

#[test]
fn short_inputs_pass_through() {
    for bytes in [&b""[..], b"\x1f", b"{", b"\x1f{"] {
        let mut input = sniff(bytes).expect("sniff");
        assert!(!input.gzip);
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut input.reader, &mut out).expect("read");
        assert_eq!(out, bytes);
    }
}

#[test]
fn a_corrupt_gzip_stream_is_an_io_error() {
    let mut bytes = gzip(&sample("disqus_fixture_isso.anon.xml"));
    let middle = bytes.len() / 2;
    bytes[middle..].iter_mut().for_each(|b| *b = !*b);
    let (result, was_gzip) = read_as("disqus", bytes);
    assert!(was_gzip);
    assert!(
        matches!(result.fatal, Some(ImportError::Io(_)) | Some(ImportError::Malformed { .. })),
        "{:?}",
        result.fatal
    );
}
