//! The Contact URIs a registrar listed in its last 2xx, kept by every
//! registerer and shown to the application: one shared string holding the
//! texts one per line (a list of strings would take three allocations for
//! the usual single binding, this takes one).

use std::sync::Arc;

use super::uri::UriRef;

/// Contact URI texts in one shared allocation. Never empty (an empty
/// list is `None` where one is held). A URI's text cannot hold a line
/// feed (control characters are refused when it is parsed, and a written
/// URI escapes them), so the line feed separates entries.
#[derive(Clone, PartialEq, Eq)]
pub struct ContactList(Arc<str>);

impl ContactList {
    /// The list of `texts`, or `None` when there is none. A text holding a
    /// line feed (none of ours can) is cut there rather than split.
    pub fn of<S: AsRef<str>>(texts: impl IntoIterator<Item = S>) -> Option<ContactList> {
        Self::joined(texts, |out, t| {
            out.push_str(t.as_ref().split('\n').next().unwrap_or_default());
        })
    }

    /// The list of `uris` (a 2xx's contacts, read in place), each written
    /// as the parsed URI's text.
    pub fn of_uris<'a>(uris: impl IntoIterator<Item = &'a UriRef<'a>>) -> Option<ContactList> {
        Self::joined(uris, |out, u| u.push_to(out))
    }

    /// The list of what `write` writes for each of `items`, one per line.
    fn joined<T>(
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut String, T),
    ) -> Option<ContactList> {
        // Room for a usual binding, so writing it does not grow the buffer.
        let mut joined = String::with_capacity(96);
        let mut any = false;
        for item in items {
            if any {
                joined.push('\n');
            }
            write(&mut joined, item);
            any = true;
        }
        any.then(|| ContactList(joined.into()))
    }

    /// How many URIs.
    pub fn len(&self) -> usize {
        self.0.bytes().filter(|b| *b == b'\n').count() + 1
    }

    /// Always false (an empty list is not made); for the convention.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// The URIs in the order listed.
    pub fn iter(&self) -> impl Iterator<Item = &str> {
        self.0.split('\n')
    }

    /// URI number `index`, if there is one.
    pub fn get(&self, index: usize) -> Option<&str> {
        self.iter().nth(index)
    }

    /// The URIs as owned strings.
    pub fn to_vec(&self) -> Vec<String> {
        self.iter().map(str::to_owned).collect()
    }
}

impl std::fmt::Debug for ContactList {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_texts_in_order_and_counts_them() {
        let l = ContactList::of(["sip:a@127.0.0.1:5060", "sip:b@[::1]:5062;ob"]).unwrap();
        assert_eq!(l.len(), 2);
        assert_eq!(l.get(0), Some("sip:a@127.0.0.1:5060"));
        assert_eq!(l.get(1), Some("sip:b@[::1]:5062;ob"));
        assert_eq!(l.get(2), None);
        assert_eq!(l.to_vec(), ["sip:a@127.0.0.1:5060", "sip:b@[::1]:5062;ob"]);
        assert_eq!(
            format!("{l:?}"),
            r#"["sip:a@127.0.0.1:5060", "sip:b@[::1]:5062;ob"]"#
        );
    }

    #[test]
    fn uris_are_written_as_their_text() {
        let texts = ["SIP:a@127.0.0.1:05060;transport=tcp", "sips:b@[0:0::1]"];
        let uris: Vec<UriRef> = texts.iter().map(|t| UriRef::parse(t).unwrap()).collect();
        let l = ContactList::of_uris(&uris).unwrap();
        assert_eq!(
            l.to_vec(),
            ["sip:a@127.0.0.1:5060;transport=tcp", "sips:b@[::1]"]
        );
        let parsed = texts.map(|t| crate::core::uri::Uri::parse(t).unwrap().text());
        assert_eq!(l.to_vec(), parsed);
        assert!(ContactList::of_uris(&[]).is_none());
    }

    #[test]
    fn none_for_no_texts_and_one_for_one() {
        assert!(ContactList::of(Vec::<String>::new()).is_none());
        let one = ContactList::of(["sip:a@h"]).unwrap();
        assert_eq!((one.len(), one.get(0)), (1, Some("sip:a@h")));
        // An empty text is an entry too (the count does not drift).
        let with_empty = ContactList::of(["", "sip:a@h", ""]).unwrap();
        assert_eq!(with_empty.to_vec(), ["", "sip:a@h", ""]);
    }

    #[test]
    fn a_line_feed_inside_a_text_cannot_add_an_entry() {
        let l = ContactList::of(["sip:a@h\nsip:forged@h", "sip:b@h"]).unwrap();
        assert_eq!(l.to_vec(), ["sip:a@h", "sip:b@h"]);
    }
}
