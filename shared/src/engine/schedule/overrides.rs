//! Overrides: a member on call from one moment to another, over every
//! layer. Where overrides overlap, the one listed last wins.

use super::Override;

#[derive(Clone, Debug, Default)]
pub struct Overrides {
    /// (from, to, member_id), in listed order.
    spans: Vec<(i64, i64, String)>,
}

impl Overrides {
    pub fn new(overrides: &[Override]) -> Self {
        Overrides {
            spans: overrides
                .iter()
                .map(|o| (o.from, o.to, o.member_id.clone()))
                .collect(),
        }
    }

    /// The member overriding at `at`, if any.
    pub fn member_at(&self, at: i64) -> Option<&str> {
        self.spans
            .iter()
            .rev()
            .find(|(from, to, _)| *from <= at && at < *to)
            .map(|(_, _, member)| member.as_str())
    }

    /// The first override edge strictly after `at`.
    pub fn next_change(&self, at: i64) -> Option<i64> {
        self.spans
            .iter()
            .flat_map(|(from, to, _)| [*from, *to])
            .filter(|&edge| edge > at)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(member: &str, from: i64, to: i64) -> Override {
        Override {
            member_id: member.into(),
            from,
            to,
        }
    }

    #[test]
    fn the_last_listed_override_wins_where_they_overlap() {
        let set = Overrides::new(&[o("a", 100, 300), o("b", 200, 250)]);
        assert_eq!(set.member_at(99), None);
        assert_eq!(set.member_at(100), Some("a"));
        assert_eq!(set.member_at(200), Some("b"));
        assert_eq!(set.member_at(250), Some("a"));
        assert_eq!(set.member_at(300), None);
        assert_eq!(set.next_change(100), Some(200));
        assert_eq!(set.next_change(250), Some(300));
        assert_eq!(set.next_change(300), None);
    }
}
