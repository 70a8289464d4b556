//! Minify + brotli figures over a corpus of real pages (issue 4). Not a test: it prints.
//! `npm run bench:minify` (builds the corpus first), or
//! `EDGELAYER_CORPUS=dir cargo bench --bench minify`.
//!
//! Per page: bytes in, after minify, after brotli 5 and 11 of the original and of the minified
//! page, and whether the minified page parses to the same tree (html5ever). Then throughput:
//! our minifier natively next to a no-op lol_html rewrite of the same input (the streaming
//! floor), and an html5ever parse + re-serialise (a tree-preserving buffering minifier's floor),
//! medians of interleaved runs.
#![allow(clippy::unwrap_used)] // test and bench code: a failed unwrap is a failed run

#[path = "../native/tree.rs"]
mod tree;

use edgelayer::compress::brotli_stage::compress;
use edgelayer::html::{minify, MinifyOptions};
use html5ever::tendril::TendrilSink;
use std::time::Instant;

fn noop_rewrite(html: &[u8]) -> usize {
    let mut n = 0;
    let mut r = lol_html::HtmlRewriter::new(lol_html::Settings::new(), |b: &[u8]| n += b.len());
    let _ = r.write(html);
    let _ = r.end();
    n
}

fn reserialize(html: &[u8]) -> Vec<u8> {
    let dom = html5ever::parse_document(markup5ever_rcdom::RcDom::default(), Default::default()).from_utf8().read_from(&mut &html[..]).expect("parse");
    let mut out = Vec::new();
    let doc: markup5ever_rcdom::SerializableHandle = dom.document.clone().into();
    html5ever::serialize(&mut out, &doc, Default::default()).expect("serialize");
    out
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

fn pct(part: usize, whole: usize) -> f64 {
    100.0 * (1.0 - part as f64 / whole as f64)
}

fn main() {
    let dir = std::env::var("EDGELAYER_CORPUS").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/corpus/html").into());
    let mut pages: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("corpus {dir}: {e} (run tests/bench/corpus.sh)"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), std::fs::read(&p).unwrap_or_default()))
        .collect();
    pages.sort();
    let opts = MinifyOptions::new();
    println!("| page | bytes | minified | br5 | br11 | min+br5 | min+br11 | same tree |");
    println!("|---|---:|---:|---:|---:|---:|---:|:---:|");
    let (mut t_in, mut t_min, mut t_b5, mut t_b11, mut t_mb5, mut t_mb11, mut t_ser, mut t_sb11, mut diffs) = (0, 0, 0, 0, 0, 0, 0, 0, 0);
    for (name, page) in &pages {
        let min = minify(page, opts.clone());
        let same = tree::tree(page) == tree::tree(&min);
        diffs += usize::from(!same);
        let (b5, b11, mb5, mb11) = (compress(page, 5).len(), compress(page, 11).len(), compress(&min, 5).len(), compress(&min, 11).len());
        let ser = reserialize(page);
        t_ser += ser.len();
        t_sb11 += compress(&ser, 11).len();
        println!("| {name} | {} | {} | {b5} | {b11} | {mb5} | {mb11} | {} |", page.len(), min.len(), if same { "yes" } else { "NO" });
        t_in += page.len();
        t_min += min.len();
        t_b5 += b5;
        t_b11 += b11;
        t_mb5 += mb5;
        t_mb11 += mb11;
    }
    println!("| **total ({} pages)** | {t_in} | {t_min} | {t_b5} | {t_b11} | {t_mb5} | {t_mb11} | {} differ |", pages.len(), diffs);
    println!();
    println!("minify saves {:.2}% of bytes; after brotli 11: {:.2}% (brotli 5: {:.2}%)", pct(t_min, t_in), pct(t_mb11, t_b11), pct(t_mb5, t_b5));
    println!("html5ever re-serialise (tree-preserving, buffering) saves {:.2}%; after brotli 11: {:.2}%", pct(t_ser, t_in), pct(t_sb11, t_b11));
    println!("tree differences after minify: {diffs} of {} pages", pages.len());

    let all: Vec<u8> = pages.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mb = all.len() as f64 / 1e6;
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let (mut ours, mut noop, mut ser, mut br5) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for _ in 0..rounds {
        let t = Instant::now();
        std::hint::black_box(minify(&all, opts.clone()));
        ours.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(noop_rewrite(&all));
        noop.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        for (_, p) in &pages {
            std::hint::black_box(reserialize(p));
        }
        ser.push(mb / t.elapsed().as_secs_f64());
        let t = Instant::now();
        std::hint::black_box(compress(&all, 5));
        br5.push(mb / t.elapsed().as_secs_f64());
    }
    let (o, n) = (median(ours), median(noop));
    println!();
    println!("throughput natively, {:.2} MB corpus, median of {rounds} interleaved runs:", mb);
    println!("  edgelayer minifier        {o:8.1} MB/s");
    println!("  no-op lol_html rewrite    {n:8.1} MB/s   (minifier at {:.0}% of the streaming floor)", 100.0 * o / n);
    println!("  html5ever parse+serialise {:8.1} MB/s", median(ser));
    println!("  brotli quality 5          {:8.1} MB/s", median(br5));
}
