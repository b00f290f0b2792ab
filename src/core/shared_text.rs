//! Text that thousands of registerers hold the same (the registrar URI of
//! one set of options, the reason phrase of the last response) as one
//! shared string: each thread remembers the last text of each kind it
//! made, and the next equal one is a clone of it, not a copy.

use std::cell::RefCell;
use std::sync::Arc;

/// Kinds of text, each with its own last value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A registrar's Request-URI.
    Registrar,
    /// A response's reason phrase.
    Reason,
}

thread_local! {
    static LAST: RefCell<[Option<Arc<str>>; 2]> = const { RefCell::new([None, None]) };
}

/// `text` shared with the last equal text of its kind made on this thread.
pub fn shared(kind: Kind, text: &str) -> Arc<str> {
    let slot = kind as usize;
    LAST.with(|last| {
        let mut last = last.borrow_mut();
        match last.get(slot).and_then(Option::as_ref) {
            Some(a) if **a == *text => a.clone(),
            _ => {
                let a: Arc<str> = text.into();
                if let Some(s) = last.get_mut(slot) {
                    *s = Some(a.clone());
                }
                a
            }
        }
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
            !Arc::ptr_eq(&shared(Kind::Reason, "OK"), &a),
            "only the last is kept"
        );
    }
}
