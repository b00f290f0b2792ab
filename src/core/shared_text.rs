//! Text that thousands of registerers hold the same (the registrar URI of
//! one set of options, the reason phrase of the last response) as one
//! shared string: each thread remembers the last few texts of each kind it
//! made, and the next equal one is a clone of one of them, not a copy.

use std::cell::RefCell;
use std::sync::Arc;

/// Kinds of text, each with its own recent values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A registrar's Request-URI.
    Registrar,
    /// A response's reason phrase.
    Reason,
}

/// Texts remembered per kind: enough for the phrases of one registration
/// ("Unauthorized" then "OK") to both stay shared.
const RECENT: usize = 4;

/// The recent texts of one kind and the slot the next new one takes.
struct Recent {
    texts: [Option<Arc<str>>; RECENT],
    next: usize,
}

impl Recent {
    const EMPTY: Recent = Recent {
        texts: [None, None, None, None],
        next: 0,
    };
}

thread_local! {
    static RECENT_TEXTS: RefCell<[Recent; 2]> = const { RefCell::new([Recent::EMPTY, Recent::EMPTY]) };
}

/// `text` shared with an equal text of its kind made lately on this thread.
pub fn shared(kind: Kind, text: &str) -> Arc<str> {
    RECENT_TEXTS.with(|all| {
        let mut all = all.borrow_mut();
        let Some(recent) = all.get_mut(kind as usize) else {
            return text.into();
        };
        if let Some(a) = recent.texts.iter().flatten().find(|a| ***a == *text) {
            return a.clone();
        }
        let a: Arc<str> = text.into();
        if let Some(slot) = recent.texts.get_mut(recent.next) {
            *slot = Some(a.clone());
        }
        recent.next = (recent.next + 1) % RECENT;
        a
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_texts_share_one_string_and_kinds_do_not_mix() {
        let a = shared(Kind::Reason, "OK");
        let b = shared(Kind::Reason, "OK");
        assert!(Arc::ptr_eq(&a, &b));
        let r = shared(Kind::Registrar, "sip:a");
        assert!(Arc::ptr_eq(&shared(Kind::Reason, "OK"), &a));
        let c = shared(Kind::Reason, "Unauthorized");
        assert_eq!((&*c, &*r), ("Unauthorized", "sip:a"));
        assert!(
            Arc::ptr_eq(&shared(Kind::Reason, "OK"), &a),
            "the last few are kept"
        );
        for other in ["A", "B", "C", "D"] {
            shared(Kind::Reason, other);
        }
        assert!(
            !Arc::ptr_eq(&shared(Kind::Reason, "OK"), &a),
            "older ones are let go"
        );
    }
}
