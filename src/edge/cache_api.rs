//! The store: the Workers Cache API as L2, the in-isolate L1, the ban list in KV, request
//! collapsing and hit-for-pass marks, and writing a fill in the background. Decisions (keys,
//! freshness, what to store) come from `crate::cache` and `crate::pipeline`.

use crate::cache::bans::Ban;
use crate::cache::key::variant_key;
use crate::cache::l1::L1;
use crate::cache::meta::CacheMeta;
use crate::cache::stored::{from_storage, to_storage};
use crate::config::L1Settings;
use crate::pipeline::fill::{HitForPass, StorePlan};
use super::context::{now_ms, to_header_map, to_headers, KV_BINDING};
use http::HeaderMap;
use std::cell::RefCell;
use std::collections::HashSet;
use std::time::Duration;
use std::rc::Rc;
use worker::*;

/// KV key prefix of ban records (the ban is the key's metadata).
const BAN_PREFIX: &str = "ban:";
/// How long a ban is kept: longer than anything can stay stored.
const BAN_TTL_SECS: u64 = 366 * 86_400;
/// Most ban-list pages read (1000 keys each).
const MAX_BAN_PAGES: usize = 5;

/// A stored response held in L1.
pub struct L1Entry {
    /// Its metadata.
    pub meta: CacheMeta,
    /// The origin's headers.
    pub headers: HeaderMap,
    /// The body.
    pub body: Vec<u8>,
}

thread_local! {
    static L1_CACHE: RefCell<Option<L1<Rc<L1Entry>>>> = const { RefCell::new(None) };
    static BANS: RefCell<Option<(u64, Rc<Vec<Ban>>)>> = const { RefCell::new(None) };
    static INFLIGHT: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
    static HIT_FOR_PASS: RefCell<std::collections::HashMap<String, u64>> = RefCell::new(std::collections::HashMap::new());
    /// Primary keys known (from an index read or a put in this isolate) to vary on the encoding
    /// alone: their variant is read directly, one Cache API read instead of two.
    static ENCODING_ONLY: RefCell<HashSet<String>> = RefCell::new(HashSet::new());
}

/// Most primary keys remembered as varying on the encoding alone (the set is cleared when full).
const MAX_ENCODING_ONLY: usize = 10_000;

fn remember_vary(primary: &str, vary: &[String]) {
    ENCODING_ONLY.with(|m| {
        let mut m = m.borrow_mut();
        if crate::cache::key::varies_on_encoding_only(vary) {
            if m.len() >= MAX_ENCODING_ONLY {
                m.clear();
            }
            m.insert(primary.to_owned());
        } else {
            m.remove(primary);
        }
    });
}

fn with_l1<T>(settings: &L1Settings, f: impl FnOnce(&mut L1<Rc<L1Entry>>) -> T) -> Option<T> {
    if settings.max_bytes == 0 {
        return None;
    }
    L1_CACHE.with(|c| {
        let mut c = c.borrow_mut();
        let l1 = c.get_or_insert_with(|| L1::new(settings.max_bytes, settings.max_entry_bytes));
        Some(f(l1))
    })
}

/// An L1 entry for the request, if a fresh one is held.
pub fn l1_get(settings: &L1Settings, primary: &str, request: &HeaderMap, now: u64) -> Option<Rc<L1Entry>> {
    with_l1(settings, |l1| {
        let index = l1.get(primary, now)?;
        if !index.meta.index {
            return Some(index);
        }
        l1.get(&variant_key(primary, &index.meta.vary, request), now)
    })
    .flatten()
}

/// Keeps a small fresh entry in L1 until its freshness ends or the L1 TTL cap, whichever is first.
pub fn l1_put(settings: &L1Settings, primary: &str, request: &HeaderMap, entry: L1Entry, now: u64) {
    let expires = crate::cache::l1::entry_expiry(&entry.meta, now, settings.max_ttl.as_millis() as u64);
    let size = crate::cache::l1::entry_size(&entry.headers, &entry.body);
    with_l1(settings, |l1| {
        if !entry.meta.vary.is_empty() {
            let index = CacheMeta { index: true, ..entry.meta.clone() };
            l1.insert(primary.to_owned(), Rc::new(L1Entry { meta: index, headers: HeaderMap::new(), body: Vec::new() }), 64, expires, now);
            let key = variant_key(primary, &entry.meta.vary, request);
            l1.insert(key, Rc::new(entry), size, expires, now);
        } else {
            l1.insert(primary.to_owned(), Rc::new(entry), size, expires, now);
        }
    });
}

/// Drops L1 entries stored for any of `paths` (all of L1 when `paths` is `None`).
pub fn l1_invalidate(settings: &L1Settings, paths: Option<&[String]>) {
    with_l1(settings, |l1| l1.retain(|_, e| paths.is_some_and(|p| !p.contains(&e.meta.path))));
}

/// A stored response found in L2.
pub struct Found {
    /// Its metadata.
    pub meta: CacheMeta,
    /// The origin's headers.
    pub headers: HeaderMap,
    /// The platform response (body not yet read).
    pub response: Response,
}

/// What a lookup found.
pub enum Lookup {
    /// A usable entry.
    Found(Found),
    /// Nothing usable; `vary_miss` when the primary existed but not this variant.
    Miss {
        /// See [`crate::cache::status::StatusDetail::vary_miss`].
        vary_miss: bool,
    },
}

async fn get_entry(key: &str, range: Option<&str>) -> Result<Option<(CacheMeta, HeaderMap, Response)>> {
    let cache = Cache::default();
    let res = match range {
        None => cache.get(key, true).await?,
        Some(r) => {
            let headers = Headers::new();
            headers.set("range", r)?;
            let mut init = RequestInit::new();
            init.with_headers(headers);
            cache.get(&Request::new_with_init(key, &init)?, true).await?
        }
    };
    let Some(res) = res else { return Ok(None) };
    let mut stored = to_header_map(res.headers());
    stored.remove("cf-cache-status"); // the platform's own marker; ours is X-Cache

    Ok(from_storage(&stored).map(|(meta, headers)| (meta, headers, res)))
}

/// Looks the request up in L2, following a variant index; banned entries count as misses.
/// `range`: the platform cuts this byte range from the body found. The primary key is read
/// whole first: it may be a variant index (an empty body no range fits).
pub async fn lookup(primary: &str, request: &HeaderMap, bans: &[Ban], range: Option<&str>) -> Result<Lookup> {
    // Known to vary on the encoding alone: read the variant directly. Every write, purge or
    // change of `Vary` deletes both such variants with the index, so one found is current.
    if ENCODING_ONLY.with(|m| m.borrow().contains(primary)) {
        let key = variant_key(primary, &["accept-encoding".to_owned()], request);
        if let Some((meta, headers, res)) = get_entry(&key, range).await? {
            if crate::cache::key::varies_on_encoding_only(&meta.vary) {
                if crate::cache::bans::is_banned(bans, &meta) {
                    return Ok(Lookup::Miss { vary_miss: false });
                }
                return Ok(Lookup::Found(Found { meta, headers, response: res }));
            }
        }
    }
    let Some((meta, headers, res)) = get_entry(primary, None).await? else { return Ok(Lookup::Miss { vary_miss: false }) };
    remember_vary(primary, &meta.vary);
    let (meta, headers, res) = if meta.index {
        match get_entry(&variant_key(primary, &meta.vary, request), range).await? {
            Some(found) => found,
            None => return Ok(Lookup::Miss { vary_miss: true }),
        }
    } else if range.is_some() {
        match get_entry(primary, range).await? {
            Some(found) => found,
            None => return Ok(Lookup::Miss { vary_miss: false }),
        }
    } else {
        (meta, headers, res)
    };
    if crate::cache::bans::is_banned(bans, &meta) {
        return Ok(Lookup::Miss { vary_miss: false });
    }
    Ok(Lookup::Found(Found { meta, headers, response: res }))
}

/// Stores a response: the variant under its key and, for responses with `Vary`, an index at
/// the primary key. `body` is either bytes (small responses, also kept in L1) or a stream.
pub async fn put(primary: &str, request: &HeaderMap, meta: &CacheMeta, headers: &HeaderMap, body: ResponseBody, storage_ttl: u64) -> Result<()> {
    let cache = Cache::default();
    let key = variant_key(primary, &meta.vary, request);
    if !meta.vary.is_empty() && !crate::cache::key::varies_on_encoding_only(&meta.vary) {
        // `Vary` changed from the encoding alone to more: the encoding-only copies must not be
        // read directly any more.
        for old in crate::cache::key::encoding_variant_keys(primary) {
            cache.delete(old.as_str(), true).await?;
        }
    }
    remember_vary(primary, &meta.vary);
    let stored = to_storage(headers, meta, storage_ttl);
    let res = Response::builder().with_status(200).with_headers(to_headers(&stored)?).body(body);
    cache.put(key.as_str(), res).await?;
    // The index goes in after the variant, so a reader never follows it to a missing variant.
    if !meta.vary.is_empty() {
        let index = CacheMeta { index: true, ..meta.clone() };
        let h = to_storage(&HeaderMap::new(), &index, storage_ttl);
        cache.put(primary, Response::builder().with_headers(to_headers(&h)?).empty()).await?;
    }
    Ok(())
}

/// Deletes the entry (or variant index) at a primary key, and both encoding variants (which a
/// lookup may read directly).
pub async fn delete(primary: &str) -> Result<()> {
    let cache = Cache::default();
    cache.delete(primary, true).await?;
    for key in crate::cache::key::encoding_variant_keys(primary) {
        cache.delete(key.as_str(), true).await?;
    }
    Ok(())
}

/// The ban list, re-read from KV at most every `refresh_ms`.
pub async fn bans(env: &Env, refresh_ms: u64, now: u64) -> Rc<Vec<Ban>> {
    if let Some(cached) = BANS.with(|b| b.borrow().as_ref().filter(|(at, _)| now.saturating_sub(*at) < refresh_ms).map(|(_, v)| v.clone())) {
        return cached;
    }
    let mut list = Vec::new();
    match env.kv(KV_BINDING) {
        Ok(kv) => {
            let mut cursor = None;
            for _ in 0..MAX_BAN_PAGES {
                let mut req = kv.list().prefix(BAN_PREFIX.to_owned());
                if let Some(c) = cursor.take() {
                    req = req.cursor(c);
                }
                match req.execute().await {
                    Ok(page) => {
                        list.extend(page.keys.into_iter().filter_map(|k| serde_json::from_value::<Ban>(k.metadata?).ok()));
                        if page.list_complete {
                            break;
                        }
                        cursor = page.cursor;
                    }
                    Err(e) => {
                        super::observe::error(None, format_args!("reading bans failed: {e}"));
                        break;
                    }
                }
            }
        }
        Err(e) => super::observe::error(None, format_args!("no KV binding for bans: {e}")),
    }
    let list = Rc::new(list);
    BANS.with(|b| *b.borrow_mut() = Some((now, list.clone())));
    list
}

/// Records bans in KV and in this isolate's copy at once.
pub async fn add_bans(env: &Env, new: &[Ban]) -> Result<()> {
    let kv = env.kv(KV_BINDING)?;
    for (i, ban) in new.iter().enumerate() {
        let key = format!("{BAN_PREFIX}{}:{i}:{}", ban.at, (js_sys::Math::random() * 1e9) as u64);
        kv.put(&key, "")?.metadata(ban)?.expiration_ttl(BAN_TTL_SECS).execute().await?;
    }
    BANS.with(|b| {
        if let Some((at, list)) = b.borrow_mut().as_mut() {
            let mut merged = (**list).clone();
            merged.extend_from_slice(new);
            *list = Rc::new(merged);
            let _ = at;
        }
    });
    Ok(())
}

/// How often a collapsed request checks whether the leader is done.
const COLLAPSE_POLL: Duration = Duration::from_millis(10);
/// Longest a collapsed request waits before going to the origin itself.
const COLLAPSE_MAX_WAIT_MS: f64 = 10_000.0;

/// Request collapsing: the first miss for a key leads; later ones wait for it to finish.
///
/// Followers poll on their own timer: the Workers runtime cancels a request whose only
/// pending work is a promise another request resolves ("code had hung"), so a channel from the
/// leader cannot wake them.
pub enum Collapse {
    /// This request fetches; dropping the guard releases the followers.
    Leader(LeaderGuard),
    /// Another request was fetching and has finished (or the wait timed out): look up again.
    Followed,
}

/// Held by the leading request until its response is stored (or found uncacheable).
pub struct LeaderGuard(String);

impl Drop for LeaderGuard {
    fn drop(&mut self) {
        INFLIGHT.with(|m| m.borrow_mut().remove(&self.0));
    }
}

/// Becomes the leader for `key`, or waits for the current leader to finish.
pub async fn collapse(key: &str) -> Collapse {
    let started = now_ms();
    let lead = INFLIGHT.with(|m| m.borrow_mut().insert(key.to_owned()));
    if lead {
        return Collapse::Leader(LeaderGuard(key.to_owned()));
    }
    while INFLIGHT.with(|m| m.borrow().contains(key)) && now_ms() - started < COLLAPSE_MAX_WAIT_MS {
        Delay::from(COLLAPSE_POLL).await;
    }
    Collapse::Followed
}

/// Becomes the leader for `key` if nobody is; `None` when a fetch is already running.
pub fn try_lead(key: &str) -> Option<LeaderGuard> {
    INFLIGHT.with(|m| m.borrow_mut().insert(key.to_owned())).then(|| LeaderGuard(key.to_owned()))
}

/// Most hit-for-pass keys remembered per isolate (the map is cleared when full).
const MAX_HIT_FOR_PASS: usize = 10_000;

/// Whether `key` is marked uncacheable until a time after `now`.
pub fn is_hit_for_pass(key: &str, now: u64) -> bool {
    HIT_FOR_PASS.with(|m| m.borrow().get(key).is_some_and(|until| *until > now))
}

/// Applies a fill's hit-for-pass decision to `key`.
pub fn set_hit_for_pass(key: &str, mark: HitForPass) {
    HIT_FOR_PASS.with(|m| {
        let mut m = m.borrow_mut();
        match mark {
            HitForPass::Mark { until } => {
                if m.len() >= MAX_HIT_FOR_PASS {
                    m.clear();
                }
                m.insert(key.to_owned(), until);
            }
            HitForPass::Clear => {
                m.remove(key);
            }
            HitForPass::Keep => {}
        }
    });
}

/// Writes a fill to L2 (and small bodies to L1) in the background: bodies up to the L1 entry
/// size are read first (length known or not, e.g. after minify or brotli) and kept in L1;
/// larger ones continue as a stream. `guard` (the collapsing lead) is released when done.
pub async fn fill_in_background(request_id: String, l1: L1Settings, primary: String, request: HeaderMap, plan: StorePlan, body: ResponseBody, guard: Option<LeaderGuard>) {
    let StorePlan { meta, mut headers, ttl_secs, page_facts } = plan;
    let limit = l1.entry_limit();
    let result = async {
        let bytes = match super::response::read_bounded(body, limit as u64).await? {
            Ok(bytes) => bytes,
            Err(rest) => return put(&primary, &request, &meta, &headers, rest, ttl_secs).await,
        };
        crate::pipeline::fill::record_page_facts(&mut headers, &bytes, page_facts);
        put(&primary, &request, &meta, &headers, ResponseBody::Body(bytes.clone()), ttl_secs).await?;
        if limit > 0 {
            l1_put(&l1, &primary, &request, L1Entry { meta: meta.clone(), headers: headers.clone(), body: bytes }, now_ms() as u64);
        }
        Ok::<(), Error>(())
    }
    .await;
    if let Err(e) = result {
        super::observe::error(Some(&request_id), format_args!("cache put for {primary} failed: {e}"));
    }
    drop(guard);
}
