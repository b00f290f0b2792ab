//! The registerers of one user agent: almost always one, so that one is
//! kept inline and only a second one makes a list on the heap.

use super::RegId;

/// Registerer ids in the order added, without duplicates (the caller checks).
#[derive(Clone, Debug, Default)]
pub(super) enum RegList {
    /// None yet (or all removed).
    #[default]
    Empty,
    /// The usual case: no allocation.
    One(RegId),
    /// Two or more.
    Many(Vec<RegId>),
}

impl RegList {
    /// The ids, in order.
    pub(super) fn as_slice(&self) -> &[RegId] {
        match self {
            RegList::Empty => &[],
            RegList::One(id) => std::slice::from_ref(id),
            RegList::Many(ids) => ids,
        }
    }

    /// Iterates over the ids.
    pub(super) fn iter(&self) -> std::slice::Iter<'_, RegId> {
        self.as_slice().iter()
    }

    /// Whether `id` is listed.
    pub(super) fn contains(&self, id: &RegId) -> bool {
        self.as_slice().contains(id)
    }

    /// Whether none is listed.
    pub(super) fn is_empty(&self) -> bool {
        self.as_slice().is_empty()
    }

    /// The ids, copied.
    pub(super) fn to_vec(&self) -> Vec<RegId> {
        self.as_slice().to_vec()
    }

    /// Adds `id` at the end.
    pub(super) fn push(&mut self, id: RegId) {
        *self = match std::mem::take(self) {
            RegList::Empty => RegList::One(id),
            RegList::One(first) => RegList::Many(vec![first, id]),
            RegList::Many(mut ids) => {
                ids.push(id);
                RegList::Many(ids)
            }
        };
    }

    /// Keeps the ids `keep` says yes to (the list goes back inline when
    /// one or none is left).
    pub(super) fn retain(&mut self, keep: impl FnMut(&RegId) -> bool) {
        let mut ids = self.to_vec();
        ids.retain(keep);
        *self = match ids.as_slice() {
            [] => RegList::Empty,
            [one] => RegList::One(*one),
            _ => RegList::Many(ids),
        };
    }
}

impl<'a> IntoIterator for &'a RegList {
    type Item = &'a RegId;
    type IntoIter = std::slice::Iter<'a, RegId>;

    fn into_iter(self) -> Self::IntoIter {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_grows_shrinks_and_keeps_its_order() {
        let mut l = RegList::default();
        assert!(l.is_empty());
        l.push(7);
        assert!(matches!(l, RegList::One(7)));
        l.push(9);
        l.push(3);
        assert_eq!(l.to_vec(), vec![7, 9, 3]);
        assert!(l.contains(&9) && !l.contains(&4));
        l.retain(|r| *r != 9);
        assert_eq!(l.iter().copied().collect::<Vec<_>>(), vec![7, 3]);
        l.retain(|r| *r != 7);
        assert!(matches!(l, RegList::One(3)));
        l.retain(|_| false);
        assert!(l.is_empty() && matches!(l, RegList::Empty));
    }

    #[test]
    fn the_list_is_no_larger_than_a_vec() {
        assert!(std::mem::size_of::<RegList>() <= std::mem::size_of::<Vec<RegId>>());
    }
}
