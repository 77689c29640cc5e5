//! Items in transit: each is delivered once its due time has come, earliest due first (so that
//! jittered latencies may reorder them, as a real transport can).

use std::collections::VecDeque;

#[derive(Clone, Debug)]
pub struct DelayLine<T> {
    items: VecDeque<(u64, T)>,
}

impl<T> Default for DelayLine<T> {
    fn default() -> Self {
        Self {
            items: VecDeque::new(),
        }
    }
}

impl<T> DelayLine<T> {
    pub fn push(&mut self, due_ns: u64, item: T) {
        self.items.push_back((due_ns, item));
    }

    /// The due item with the earliest due time, if any is due at `now_ns`.
    pub fn pop_due(&mut self, now_ns: u64) -> Option<T> {
        let idx = self
            .items
            .iter()
            .enumerate()
            .filter(|(_, (t, _))| *t <= now_ns)
            .min_by_key(|(_, (t, _))| *t)
            .map(|(i, _)| i)?;
        self.items.remove(idx).map(|(_, item)| item)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delivers_due_items_earliest_first() {
        let mut d = DelayLine::default();
        d.push(30, "c");
        d.push(10, "a");
        d.push(20, "b");
        assert_eq!(d.pop_due(5), None);
        assert_eq!(d.pop_due(25), Some("a"));
        assert_eq!(d.pop_due(25), Some("b"));
        assert_eq!(d.pop_due(25), None);
        assert_eq!(d.pop_due(30), Some("c"));
    }
}
