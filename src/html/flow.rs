//! The minifier's view of the document as it streams: which elements are open, whether each
//! closed cleanly, what the parser opens on its own, and the one tag held back for a token of
//! lookahead. The lol_html handlers in [`super::Minifier`] only call these methods; every
//! decision is here (and in the pure rules of [`super::tags`] and [`super::refs`]).
//!
//! ### Beware
//! lol_html runs the end tag handlers of every element an end tag closes (`</li>` closes an
//! open `<b>` too), and does not know what the tree builder would ignore or move (a `<tr>`
//! outside a table, text fostered out of a table, `</p>` breaking out of SVG). Whenever the
//! view may be wrong, elements are marked not `clean` and the decisions that depend on them
//! (omitting an end tag, dropping blank text) are not taken; text whose meaning is in doubt is
//! left alone.

use super::{collapse_whitespace, is_ascii_ws, refs, tags, MinifyOptions};
use std::borrow::Cow;
use std::rc::Rc;

/// Deeper than any real page nests. Past it the minifier stops following the structure
/// (`Flow::lost`): the checks that walk the open elements would make a hostile page of
/// 100,000 nested `<div>`s cost quadratic time.
const MAX_TRACKED_DEPTH: usize = 256;

/// Elements whose content is never rewritten (whitespace is significant or the text is raw).
const PRESERVING: &[&str] = &["pre", "textarea", "code", "listing", "xmp", "plaintext"];

/// Markup left out for now: written before the next byte of output unless the next token
/// implies it (then it is dropped for good).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pending {
    /// `</name>` of an element with an optional end tag.
    End(Rc<str>),
    /// `<head>` without attributes.
    HeadStart,
}

impl Pending {
    fn markup(&self) -> String {
        match self {
            Pending::End(name) => format!("</{name}>"),
            Pending::HeadStart => "<head>".to_owned(),
        }
    }
}

/// An element the minifier saw open and has not seen close.
struct Open {
    name: Rc<str>,
    id: u64,
    /// Everything opened inside it was closed by its own end tag, and nothing inside it made
    /// the parser close it early: its end tag may be implied, blank text in it judged by name.
    clean: bool,
    /// The parser made an element for it ([`tags::opened_by_parser`]); if not, its tags are
    /// no boundary between texts.
    opened: bool,
}

impl AsRef<str> for Open {
    fn as_ref(&self) -> &str {
        &self.name
    }
}

/// What an element's end tag handler needs to know about it.
pub(super) struct Closing {
    id: u64,
    name: Rc<str>,
    preserves: bool,
    enters_foreign: bool,
    /// Its end tag may be left out when implied.
    optional: bool,
}

/// A start tag as the handler sees it.
pub(super) struct StartTag<'a> {
    /// Lower-case name.
    pub name: &'a str,
    /// In SVG or MathML (lol_html's namespace).
    pub foreign: bool,
    /// `xml:space` or an inline `white-space` style.
    pub preserves_by_attribute: bool,
    /// Not void: an end tag may come.
    pub can_have_end: bool,
}

/// What the handlers share while a document streams through.
#[derive(Default)]
pub(super) struct Flow {
    stack: Vec<Open>,
    next_id: u64,
    pending: Option<Pending>,
    /// Elements open whose whitespace is significant.
    preserve_depth: u32,
    /// SVG and MathML elements open (their text is left alone).
    foreign_depth: u32,
    /// An element was opened (blank text at the top level is no longer before the document).
    seen_element: bool,
    /// The document nested deeper than [`MAX_TRACKED_DEPTH`]: no end tag is left out and no
    /// blank text dropped from then on, and comments stay.
    lost: bool,
    /// A body was opened (or implied): blank text outside it goes into it.
    body_seen: bool,
    /// Nothing came yet after a `<pre>` or `<listing>` start tag.
    pre_start: bool,
    /// The output of the current text node so far ended in whitespace.
    prev_ws: bool,
    /// Raw text held back from the end of a chunk (a character reference that may be cut).
    carry: String,
    /// Whitespace held back where it is dropped if the whole text node is blank.
    held_ws: String,
    /// Part of the current text node was written (so the rest of it is written too).
    node_has_text: bool,
}

impl Flow {
    /// The element whose content the next token is, as far as the minifier knows.
    fn parent(&self) -> Option<&str> {
        self.stack.last().map(|o| &*o.name)
    }

    /// A tag was handled: held blank text before it is dropped for good.
    fn tag_seen(&mut self) {
        self.held_ws.clear();
    }

    /// Opens (in the minifier's view) what the parser opens on its own.
    fn imply(&mut self, implied: tags::Implied) {
        let synthetic = |name: &str| Open { name: name.into(), id: u64::MAX, clean: true, opened: true };
        match implied {
            tags::Implied::Nothing => {}
            tags::Implied::Head => self.stack.push(synthetic("head")),
            tags::Implied::Body => self.stack.push(synthetic("body")),
            tags::Implied::HeadEndAndBody => {
                self.stack.pop();
                self.stack.push(synthetic("body"));
            }
        }
        self.body_seen |= matches!(implied, tags::Implied::Body | tags::Implied::HeadEndAndBody);
    }

    /// Whether blank text here is never rendered ([`tags::whitespace_ignorable_in`]).
    fn blank_text_ignorable(&self) -> bool {
        if self.lost {
            return false;
        }
        if self.stack.last().is_some_and(|o| !o.clean) {
            return false; // something inside it made the parser close it, or closed on its own
        }
        // After the document's last end tag, text goes into the body the parser makes.
        tags::whitespace_ignorable_in(&self.stack, if self.stack.is_empty() { self.seen_element } else { self.body_seen })
    }

    /// Whether the rewriting of tags and text is off here (inside SVG or MathML, what lol_html
    /// takes for a tag may be text to a browser that broke out of it).
    pub(super) fn in_foreign(&self) -> bool {
        self.foreign_depth > 0
    }

    /// A start tag: settles the pending tag, notes what the tag closes or implies, and opens
    /// it. Returns what its end tag handler needs, when it can have one.
    pub(super) fn start_tag(&mut self, tag: &StartTag<'_>, omit_optional: bool) -> Option<Closing> {
        let name = tag.name;
        if let Some(p) = &self.pending {
            let implied = match p {
                Pending::End(open) => tags::end_implied_by_start(open, name, self.parent()),
                Pending::HeadStart => !matches!(name, "head" | "html"),
            };
            if implied {
                self.pending = None;
            }
        }
        self.lost |= self.stack.len() >= MAX_TRACKED_DEPTH;
        let opened = self.lost || tags::opened_by_parser(name, &self.stack, self.seen_element, self.body_seen);
        if opened || matches!(self.parent(), None | Some("html" | "head")) {
            // Blank text held before a tag the parser skips joins the text after it, except
            // outside the body, where the parser drops it or keeps it apart.
            self.tag_seen();
        }
        self.pre_start = matches!(name, "pre" | "listing");
        let implied = tags::implied_by_start(self.parent(), self.seen_element, name);
        self.imply(implied);
        self.seen_element = true;
        self.body_seen |= name == "body";
        let top = self.parent().unwrap_or_default();
        let fostered = !self.lost && tags::fostered(top, name);
        // An element still open here that this start tag closes (`<li>` an open li), and
        // everything inside it: their own end tags, if they come, imply nothing.
        let closes_p = tags::closes_p(name);
        let closed = (!self.lost && tags::may_close_open_elements(name))
            .then(|| {
                (0..self.stack.len()).find(|&i| {
                    let (o, parent) = (&self.stack[i], i.checked_sub(1).map(|p| &*self.stack[p].name));
                    let sibling_closes = !matches!(&*o.name, "head" | "body" | "html") && tags::end_implied_by_start(&o.name, name, parent);
                    (closes_p && &*o.name == "p") || sibling_closes || tags::closes_container(&o.name, top, name)
                })
            })
            .flatten();
        if fostered {
            if let Some(o) = self.stack.last_mut() {
                o.clean = false;
            }
        }
        if let Some(from) = closed {
            self.stack[from..].iter_mut().for_each(|o| o.clean = false);
        }
        if !tag.can_have_end {
            return None;
        }
        // SVG and MathML text is left alone: lol_html keeps reading it as foreign content
        // where the parser breaks out of it (`</p>` inside an `<svg>`), so a `<script>` there
        // may be raw text to a browser.
        let enters_foreign = matches!(name, "svg" | "math");
        let preserves = PRESERVING.contains(&name) || tag.preserves_by_attribute;
        let id = self.next_id;
        self.next_id += 1;
        let shared: Rc<str> = Rc::from(name);
        self.stack.push(Open { name: shared.clone(), id, clean: opened && !self.lost, opened });
        self.preserve_depth += u32::from(preserves);
        self.foreign_depth += u32::from(enters_foreign);
        // Foreign elements have no implied end tags.
        let optional = omit_optional && !tag.foreign && tags::OPTIONAL_END.contains(&name);
        Some(Closing { id, name: shared, preserves, enters_foreign, optional })
    }

    /// The end tag `</end_name>` closes the element of `closing` (its own, or an ancestor's).
    /// Returns whether the end tag is left out for now (it became the pending tag).
    pub(super) fn end_tag(&mut self, closing: &Closing, end_name: &str) -> bool {
        let Closing { id, name, preserves, enters_foreign, optional } = closing;
        self.pre_start = false;
        let Some(at) = self.stack.iter().rposition(|o| o.id == *id) else {
            return false;
        };
        if *preserves || *enters_foreign {
            // Closed by an end tag the parser may ignore (its element was closed early): the
            // text stays untouched for the rest of the page, the safe side.
            let doubtful = end_name != &**name && !(tags::end_closes_everything_inside(end_name) && self.stack[..at].iter().rev().find(|o| &*o.name == end_name).is_some_and(|o| o.clean));
            if !doubtful {
                self.preserve_depth -= u32::from(*preserves && self.preserve_depth > 0);
                self.foreign_depth -= u32::from(*enters_foreign && self.foreign_depth > 0);
            }
        }
        if self.stack[at].opened {
            self.tag_seen();
        }
        if end_name != &**name {
            // This element was open without its own end tag, so its parent's end tag is not
            // implied by anything.
            self.stack.truncate(at);
            if let Some(parent) = self.stack.last_mut() {
                parent.clean = false;
            }
            return false;
        }
        // The pending end tag is this element's last child's, written right before this end
        // tag: drop it when this end tag implies it.
        if at + 1 == self.stack.len() && self.stack[at].clean {
            if let Some(Pending::End(child)) = &self.pending {
                if tags::end_implied_by_end(child, name) {
                    self.pending = None;
                }
            }
        }
        let clean = self.stack[at].clean && at + 1 == self.stack.len() && tags::in_structural_place(name, &self.stack[..at]);
        self.stack.truncate(at);
        if !clean {
            // The parser may still have elements open that the minifier just closed: what is
            // around them is not what it seems either.
            if let Some(parent) = self.stack.last_mut() {
                parent.clean = false;
            }
        }
        if *optional && clean && !self.lost && self.pending.is_none() {
            self.pending = Some(Pending::End(name.clone()));
            return true;
        }
        false
    }

    /// Whether the `<head>` just opened (without attributes) may be left out for now: it is
    /// the document's own. Call after [`Flow::start_tag`]; then [`Flow::hold_head_start`].
    pub(super) fn head_start_may_go(&self, name: &str) -> bool {
        name == "head" && tags::in_structural_place("head", &self.stack[..self.stack.len().saturating_sub(1)])
    }

    /// The `<head>` start tag was left out: it is written before the next output unless an
    /// element follows.
    pub(super) fn hold_head_start(&mut self) {
        self.pending = Some(Pending::HeadStart);
    }

    /// A comment: whether it may go (`removable`: the options would remove it).
    pub(super) fn comment(&mut self, removable: bool) -> bool {
        // A newline right after `<pre>` is dropped by the parser: a comment there keeps the
        // text after it from being first. In a table outside its cells, text before and after
        // a comment is fostered apart or kept in the table; without the comment the two
        // would join.
        let in_table = !self.lost
            && self.stack.iter().rev().map(|o| &*o.name).find(|n| matches!(*n, "table" | "tbody" | "thead" | "tfoot" | "tr" | "td" | "th" | "caption")).is_some_and(|n| !matches!(n, "td" | "th" | "caption"));
        if removable && !self.lost && !self.pre_start && !in_table && self.foreign_depth == 0 {
            return true;
        }
        self.tag_seen(); // a node of its own between texts
        false
    }

    /// A chunk of text outside raw-text elements. Returns the text to write instead, when it
    /// changes.
    pub(super) fn text(&mut self, chunk: &str, last: bool, opts: &MinifyOptions) -> Option<String> {
        self.pre_start &= chunk.is_empty();
        // Borrowed until something changes: most chunks pass as they are.
        let mut text: Cow<'_, str> = if self.carry.is_empty() { Cow::Borrowed(chunk) } else { Cow::Owned(std::mem::take(&mut self.carry) + chunk) };
        let mut changed = matches!(text, Cow::Owned(_));
        if opts.shorten_char_refs && !last {
            if let Some(at) = refs::incomplete_tail(&text) {
                self.carry = text[at..].to_owned();
                text = Cow::Owned(text[..at].to_owned());
                changed = true;
            }
        }
        let plain = self.preserve_depth == 0 && self.foreign_depth == 0;
        if opts.collapse_whitespace && plain {
            let was_ws = self.prev_ws;
            if let Some(out) = collapse_whitespace(&text, was_ws) {
                text = Cow::Owned(out);
                changed = true;
            }
            self.prev_ws = text.as_bytes().last().copied().map_or(was_ws, is_ascii_ws);
        }
        let blank = text.bytes().all(is_ascii_ws);
        if opts.drop_ignorable_whitespace && plain && blank && !self.node_has_text && self.carry.is_empty() && self.blank_text_ignorable() {
            self.held_ws.push_str(&text);
            text = Cow::Borrowed("");
            changed = true;
        } else if !self.held_ws.is_empty() {
            text = Cow::Owned(std::mem::take(&mut self.held_ws) + &text);
            changed = true;
        }
        if opts.shorten_char_refs && self.foreign_depth == 0 {
            if let Some(out) = refs::shorten_in_text(&text, last.then_some(b'<'), opts.utf8) {
                text = Cow::Owned(out);
                changed = true;
            }
        }
        let blank = text.bytes().all(is_ascii_ws);
        self.node_has_text |= !text.is_empty();
        if !blank && plain {
            let implied = tags::implied_by_text(self.parent());
            self.imply(implied);
            // Text in a table is fostered out of it, maybe into reopened formatting elements
            // that take later text too: blank text there is kept from now on.
            if let Some(top) = self.stack.last_mut().filter(|o| tags::fostered(&o.name, "#text")) {
                top.clean = false;
            }
        }
        if !text.is_empty() && (self.body_seen || !blank) && matches!(&self.pending, Some(Pending::End(e)) if matches!(&**e, "body" | "html")) {
            self.pending = None; // text after them goes into the body all the same
        }
        if last {
            self.prev_ws = false;
            self.held_ws.clear(); // a blank text node of its own: dropped
            self.node_has_text = false;
        }
        changed.then(|| text.into_owned())
    }

    /// A chunk of raw text or RCDATA (script, style, title, textarea): passes as it is.
    pub(super) fn raw_text(&mut self) {
        self.prev_ws = false;
        self.pre_start = false;
    }

    /// The pending tag, to write before output that no handler saw coming (or any output).
    pub(super) fn take_pending(&mut self) -> Option<String> {
        self.pending.take().map(|p| p.markup())
    }

    /// The end of the document: what is still to write (a pending tag the end does not
    /// imply); blank text held where it is never rendered is dropped.
    pub(super) fn finish(&mut self) -> String {
        self.held_ws.clear();
        let pending = self.pending.take().filter(|p| !matches!(p, Pending::End(name) if tags::end_implied_at_eof(name)));
        let mut out = pending.map(|p| p.markup()).unwrap_or_default();
        out.push_str(&std::mem::take(&mut self.carry));
        out
    }

    /// After a bail-out nothing decides any more: everything held back, to write as it is.
    pub(super) fn release_all(&mut self) -> String {
        [self.take_pending().unwrap_or_default(), std::mem::take(&mut self.held_ws), std::mem::take(&mut self.carry)].concat()
    }
}
