//! Minify + brotli figures over two corpora of real pages (issues 4 and 16). Not a test: it
//! prints. `npm run bench:minify` (builds the corpora and the minify-html peer first), or
//! `EDGELAYER_CORPORA="dir1 dir2" cargo bench --bench minify`.
//!
//! Per page: bytes in, after minify, brotli 11 of the original and of the minified page,
//! whether the minified page parses to the same tree (html5ever), its size after the
//! per-response nonce pass, and minify-html's output and tree when `EDGELAYER_MINIFY_HTML_PY`
//! names a Python with it. Then what each transformation saves (switched off alone), and
//! throughput: our minifier natively next to a no-op lol_html rewrite of the same input (the
//! streaming floor) and an html5ever parse + re-serialise, medians of interleaved runs.
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

/// Whether a page says it is UTF-8 (what an origin's `Content-Type: text/html; charset=utf-8`
/// tells the worker): references may then become the characters themselves.
fn declares_utf8(page: &[u8]) -> bool {
    let head = String::from_utf8_lossy(&page[..page.len().min(4096)]).to_ascii_lowercase();
    head.contains("charset=utf-8") || head.contains("charset=\"utf-8\"") || head.contains("charset='utf-8'")
}

fn options_for(page: &[u8]) -> MinifyOptions {
    MinifyOptions::new().with_utf8(declares_utf8(page))
}

/// The transformations on by default, each switched off alone to measure what it saves.
type Switch = (&'static str, fn(MinifyOptions) -> MinifyOptions);
const SWITCHES: &[Switch] = &[
    ("short start tags (`name` for `name=\"\"`, no `/>`)", |o| o.with_short_start_tags(false)),
    ("whitespace collapsing", |o| o.with_collapse_whitespace(false)),
    ("comments", |o| o.with_remove_comments(false)),
    ("JSON scripts", |o| o.with_minify_json(false)),
    ("default attributes", |o| o.with_remove_default_attributes(false)),
    ("optional tags", |o| o.with_omit_optional_tags(false)),
    ("shortest character references", |o| o.with_shorten_char_refs(false)),
    ("blank text where never rendered", |o| o.with_drop_ignorable_whitespace(false)),
];

fn load(dir: &str) -> Vec<(String, Vec<u8>)> {
    let mut pages: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("corpus {dir}: {e} (run tests/bench/corpus.sh and tests/bench/corpus-web.sh)"))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "html"))
        .map(|p| (p.file_name().unwrap_or_default().to_string_lossy().into_owned(), std::fs::read(&p).unwrap_or_default()))
        .collect();
    pages.sort();
    pages
}

/// The per-response nonce pass over a stored (minified) page, as the worker runs it.
fn with_nonce(min: &[u8]) -> Vec<u8> {
    minify(min, MinifyOptions::nonce_only(edgelayer::headers::nonce_text(&[7; 16])))
}

/// minify-html (PyPI) over the corpus when `EDGELAYER_MINIFY_HTML_PY` names a Python that has
/// it: its outputs (by page name) and its throughput.
fn peer(dir: &str) -> Option<(std::collections::HashMap<String, Vec<u8>>, String)> {
    let python = std::env::var("EDGELAYER_MINIFY_HTML_PY").ok()?;
    let out_dir = format!("{dir}-minify-html");
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bench/minify_html_peer.py");
    let run = std::process::Command::new(python).args([script, dir, &out_dir, "15"]).output().ok()?;
    if !run.status.success() {
        eprintln!("minify-html peer failed: {}", String::from_utf8_lossy(&run.stderr));
        return None;
    }
    let speed = String::from_utf8_lossy(&run.stdout).trim().to_owned();
    let outputs = load(&out_dir).into_iter().collect();
    Some((outputs, speed))
}

fn corpus(dir: &str) {
    let pages = load(dir);
    let peer = peer(dir);
    println!("\n## corpus {dir} ({} pages)\n", pages.len());
    println!("| page | bytes | minified | br11 | min+br11 | same tree | with nonce | minify-html | its tree |");
    println!("|---|---:|---:|---:|---:|:---:|---:|---:|:---:|");
    let (mut t_in, mut t_min, mut t_b5, mut t_b11, mut t_mb5, mut t_mb11, mut t_ser, mut t_sb11, mut diffs) = (0, 0, 0, 0, 0, 0, 0, 0, 0);
    let (mut t_nonce, mut larger, mut p_out, mut p_b11, mut p_diffs, mut p_loose, mut loose) = (0, 0, 0, 0, 0, 0, 0);
    for (name, page) in &pages {
        let min = minify(page, options_for(page));
        let same = tree::tree(page) == tree::tree(&min);
        diffs += usize::from(!same);
        let original_loose = tree::tree_by(page, tree::Rules::Loose);
        loose += usize::from(original_loose != tree::tree_by(&min, tree::Rules::Loose));
        let (b5, b11, mb5, mb11) = (compress(page, 5).len(), compress(page, 11).len(), compress(&min, 5).len(), compress(&min, 11).len());
        let ser = reserialize(page);
        t_ser += ser.len();
        t_sb11 += compress(&ser, 11).len();
        let nonced = with_nonce(&min).len();
        t_nonce += nonced;
        larger += usize::from(nonced > page.len());
        let (peer_len, peer_same) = match peer.as_ref().and_then(|(outs, _)| outs.get(name)) {
            Some(out) => {
                let same = tree::tree(page) == tree::tree(out);
                p_diffs += usize::from(!same);
                let same_loose = original_loose == tree::tree_by(out, tree::Rules::Loose);
                if !same_loose && std::env::var("SHOW_DIFF").is_ok() {
                    eprintln!("{name}: {}", first_diff(&original_loose, &tree::tree_by(out, tree::Rules::Loose)));
                }
                p_loose += usize::from(!same_loose);
                p_out += out.len();
                p_b11 += compress(out, 11).len();
                (out.len().to_string(), if same { "yes" } else if same_loose { "blank text" } else { "NO" })
            }
            None => ("-".into(), "-"),
        };
        println!("| {name} | {} | {} | {b11} | {mb11} | {} | {nonced} | {peer_len} | {peer_same} |", page.len(), min.len(), if same { "yes" } else { "NO" });
        t_in += page.len();
        t_min += min.len();
        t_b5 += b5;
        t_b11 += b11;
        t_mb5 += mb5;
        t_mb11 += mb11;
    }
    println!("| **total** | {t_in} | {t_min} | {t_b11} | {t_mb11} | {diffs} differ | {t_nonce} | {p_out} | {p_diffs} differ |");
    println!();
    println!(
        "edgelayer minify saves {:.2}% of bytes; after brotli 11: {:.2}% (brotli 5: {:.2}%); tree differences: {diffs} of {} pages (by the issue's looser rules: {loose})",
        pct(t_min, t_in),
        pct(t_mb11, t_b11),
        pct(t_mb5, t_b5),
        pages.len()
    );
    println!("with the per-response CSP nonce pass: {:.2}% saved; pages larger than they came: {larger} of {}", pct(t_nonce, t_in), pages.len());
    if let Some((_, speed)) = &peer {
        println!(
            "minify-html (HTML only) saves {:.2}% of bytes; after brotli 11: {:.2}%; tree differences: {p_diffs} of {} pages (by the issue's looser rules, blank text anywhere: {p_loose})",
            pct(p_out, t_in),
            pct(p_b11, t_b11),
            pages.len()
        );
        println!("  ({speed} natively, whole corpus, median of 15)");
    }
    println!("html5ever re-serialise (tree-preserving, buffering) saves {:.2}%; after brotli 11: {:.2}%", pct(t_ser, t_in), pct(t_sb11, t_b11));

    println!();
    println!("| transformation (switched off alone) | bytes it saves | after brotli 11 |");
    println!("|---|---:|---:|");
    for (what, off) in SWITCHES {
        let (mut bytes, mut br) = (0, 0);
        for (_, page) in &pages {
            let out = minify(page, off(options_for(page)));
            bytes += out.len();
            br += compress(&out, 11).len();
        }
        println!("| {what} | {:.2} % | {:.2} % |", 100.0 * (bytes as f64 - t_min as f64) / t_in as f64, 100.0 * (br as f64 - t_mb11 as f64) / t_b11 as f64);
    }
    let (mut bytes, mut br) = (0, 0);
    for (_, page) in &pages {
        let out = minify(page, options_for(page).with_unquote_attributes(true));
        bytes += out.len();
        br += compress(&out, 11).len();
    }
    println!("| unquoted attribute values (off by default; switched on) | {:.2} % | {:.2} % |", 100.0 * (t_min as f64 - bytes as f64) / t_in as f64, 100.0 * (t_mb11 as f64 - br as f64) / t_b11 as f64);

    let all: Vec<u8> = pages.iter().flat_map(|(_, p)| p.iter().copied()).collect();
    let mb = all.len() as f64 / 1e6;
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|r| r.parse().ok()).unwrap_or(15);
    let (mut ours, mut noop, mut ser, mut br5) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let opts = options_for(&all);
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

fn main() {
    let dirs = std::env::var("EDGELAYER_CORPORA").unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/target/corpus/html ", env!("CARGO_MANIFEST_DIR"), "/target/corpus/web").into());
    for dir in dirs.split_whitespace() {
        corpus(dir);
    }
}
#[allow(dead_code)]
fn first_diff(a: &[tree::N], b: &[tree::N]) -> String {
    for (x, y) in a.iter().zip(b.iter()) {
        if x != y {
            if let (tree::N::El(n1, a1, k1), tree::N::El(n2, a2, k2)) = (x, y) {
                if n1 == n2 && a1 == a2 {
                    return first_diff(k1, k2);
                }
            }
            return format!("{:?}\n  vs\n{:?}", x, y).chars().take(600).collect();
        }
    }
    format!("lengths {} vs {}", a.len(), b.len())
}
