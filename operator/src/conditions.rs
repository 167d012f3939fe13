//! Kubernetes-style status conditions: built fresh each reconcile, keeping the previous
//! `lastTransitionTime` while a condition's status stays the same.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// One condition as a reconcile computes it, before timestamps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cond {
    pub type_: &'static str,
    pub status: bool,
    pub reason: String,
    pub message: String,
}

impl Cond {
    pub fn new(type_: &'static str, status: bool, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self { type_, status, reason: reason.into(), message: message.into() }
    }
}

/// The API conditions for `conds`, carrying `lastTransitionTime` over from `previous`
/// when the status did not change.
pub fn to_conditions(conds: &[Cond], previous: &[Condition], generation: Option<i64>, now: Time) -> Vec<Condition> {
    conds
        .iter()
        .map(|c| {
            let status = if c.status { "True" } else { "False" }.to_string();
            let since = previous
                .iter()
                .find(|p| p.type_ == c.type_ && p.status == status)
                .map_or_else(|| now.clone(), |p| p.last_transition_time.clone());
            Condition {
                type_: c.type_.to_string(),
                status,
                reason: c.reason.clone(),
                // The API caps messages at 32 KiB; engine errors can be long.
                message: truncate(&c.message, 4096),
                last_transition_time: since,
                observed_generation: generation,
            }
        })
        .collect()
}

/// Conditions whose status or reason differs from `previous`: what deserves an Event.
pub fn changed<'a>(conds: &'a [Cond], previous: &[Condition]) -> Vec<&'a Cond> {
    conds
        .iter()
        .filter(|c| {
            let status = if c.status { "True" } else { "False" };
            !previous.iter().any(|p| p.type_ == c.type_ && p.status == status && p.reason == c.reason)
        })
        .collect()
}

/// `conds` with their transition times blanked: equal lists mean no status write is due.
pub fn without_times(conds: &[Condition]) -> Vec<Condition> {
    conds.iter().map(|c| Condition { last_transition_time: Time(jiff::Timestamp::UNIX_EPOCH), ..c.clone() }).collect()
}

pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn time(s: &str) -> Time {
        Time(s.parse().unwrap())
    }

    #[test]
    fn transition_time_moves_only_when_the_status_changes() {
        let before =
            to_conditions(&[Cond::new("Ready", false, "Pending", "")], &[], Some(1), time("2026-01-01T00:00:00Z"));
        let same =
            to_conditions(&[Cond::new("Ready", false, "Other", "x")], &before, Some(2), time("2026-01-02T00:00:00Z"));
        assert_eq!(same[0].last_transition_time, time("2026-01-01T00:00:00Z"));
        assert_eq!(same[0].observed_generation, Some(2));
        let flipped =
            to_conditions(&[Cond::new("Ready", true, "Up", "")], &same, Some(2), time("2026-01-03T00:00:00Z"));
        assert_eq!(flipped[0].last_transition_time, time("2026-01-03T00:00:00Z"));
    }

    #[test]
    fn a_new_reason_or_status_is_a_change() {
        let prev = to_conditions(
            &[Cond::new("Degraded", true, "ImagePullFailed", "a")],
            &[],
            None,
            time("2026-01-01T00:00:00Z"),
        );
        let same_reason = [Cond::new("Degraded", true, "ImagePullFailed", "b")];
        assert!(changed(&same_reason, &prev).is_empty());
        let new_reason = [Cond::new("Degraded", true, "ModuleInvalid", "c")];
        assert_eq!(changed(&new_reason, &prev).len(), 1);
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        assert_eq!(truncate("héllo", 2), "h...");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
